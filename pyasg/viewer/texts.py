"""The inspector's texts: what each op does and what each parameter is for, in English and Russian.

Texts are data: `OPS_TEXT` (one entry per primitive op name, with `what`, `formula`
and `why`), `PARAM_TEXT` (one entry per layer parameter kind, as recorded by
`Module.param_kinds()` and listed in `pyasg.nn.ROLES`), `PARAM_PATTERNS` (how a
kind is guessed from a dotted parameter path when none was recorded) and
`UI_TEXT` (interface labels). Tests fail when an op or a kind has no text.

>>> explain_op("matmul", "en")["formula"]
'y = x₁·x₂,  yᵢⱼ = Σₖ x₁ᵢₖ x₂ₖⱼ'
>>> explain_param("blocks.0.norm1.weight", "LayerNorm.weight", "ru")
'масштаб γ: ...'
>>> explain_param("attn.w_q.weight")
'query projection: ...'
>>> resolve_lang("ru")
'ru'
"""

from __future__ import annotations

import re
import sys

#: The languages every text exists in; the first is the fallback.
LANGS: tuple[str, ...] = ("en", "ru")

OPS_TEXT: dict[str, dict[str, dict[str, str]]] = {
    # --- leaves -------------------------------------------------------------------------
    "input": {
        "en": {
            "what": "A value that enters the graph from outside: a function argument or a "
                    "model parameter, named by its path (e.g. params.blocks.0.norm1.weight).",
            "formula": "y = the value passed in at run time",
            "why": "Every computation starts from data and weights; keeping them as named "
                   "inputs lets one compiled graph run on any batch and any parameter values.",
        },
        "ru": {
            "what": "Значение, которое приходит в граф извне: аргумент функции или параметр "
                    "модели, названный по своему пути (например, params.blocks.0.norm1.weight).",
            "formula": "y = значение, переданное при запуске",
            "why": "Любое вычисление начинается с данных и весов; именованные входы позволяют "
                   "запускать один скомпилированный граф на любом батче и любых параметрах.",
        },
    },
    "constant": {
        "en": {
            "what": "A fixed array stored inside the graph itself (a literal such as 0.5, "
                    "a mask or a lookup table).",
            "formula": "y = c (known when the graph is built)",
            "why": "Numbers that never change between runs are baked in, so the backend can "
                   "fold them into other ops instead of passing them every time.",
        },
        "ru": {
            "what": "Фиксированный массив, хранящийся прямо в графе (литерал вроде 0.5, "
                    "маска или таблица).",
            "formula": "y = c (известно при построении графа)",
            "why": "Числа, которые не меняются между запусками, встраиваются в граф, и бэкенд "
                   "может сворачивать их с другими операциями, а не передавать каждый раз.",
        },
    },
    # --- unary elementwise ------------------------------------------------------------
    "neg": {
        "en": {
            "what": "Flips the sign of every element.",
            "formula": "y = −x",
            "why": "Appears in subtraction, in losses (the minus in −log p) and in gradients.",
        },
        "ru": {
            "what": "Меняет знак каждого элемента.",
            "formula": "y = −x",
            "why": "Встречается в вычитании, в функциях потерь (минус в −log p) и в градиентах.",
        },
    },
    "abs": {
        "en": {
            "what": "The absolute value of every element.",
            "formula": "y = |x|",
            "why": "Used by the L1 loss, L1 regularisation and the Huber loss, which "
                   "penalise errors linearly and so are less sensitive to outliers.",
        },
        "ru": {
            "what": "Модуль (абсолютное значение) каждого элемента.",
            "formula": "y = |x|",
            "why": "Нужен для L1-функции потерь, L1-регуляризации и функции Хьюбера: они "
                   "штрафуют ошибку линейно и поэтому меньше чувствительны к выбросам.",
        },
    },
    "sign": {
        "en": {
            "what": "−1, 0 or 1 according to the sign of each element.",
            "formula": "y = sign(x) ∈ {−1, 0, 1}",
            "why": "It is the derivative of |x| (used in the gradient of the L1 loss) and "
                   "appears in sign-based optimisers.",
        },
        "ru": {
            "what": "−1, 0 или 1 в зависимости от знака каждого элемента.",
            "formula": "y = sign(x) ∈ {−1, 0, 1}",
            "why": "Это производная |x| (входит в градиент L1-функции потерь); используется "
                   "и в оптимизаторах, работающих со знаком градиента.",
        },
    },
    "exp": {
        "en": {
            "what": "The exponential of every element.",
            "formula": "y = eˣ",
            "why": "The heart of softmax and of the sigmoid: it turns scores (logits) into "
                   "positive numbers that can be normalised into probabilities.",
        },
        "ru": {
            "what": "Экспонента каждого элемента.",
            "formula": "y = eˣ",
            "why": "Основа softmax и сигмоиды: превращает оценки (логиты) в положительные "
                   "числа, которые затем нормируются в вероятности.",
        },
    },
    "log": {
        "en": {
            "what": "The natural logarithm of every element.",
            "formula": "y = ln x",
            "why": "Cross-entropy and log-likelihood losses are built on it; log-probabilities "
                   "are also numerically safer than tiny raw probabilities.",
        },
        "ru": {
            "what": "Натуральный логарифм каждого элемента.",
            "formula": "y = ln x",
            "why": "На нём построены кросс-энтропия и логарифм правдоподобия; к тому же "
                   "логарифмы вероятностей численно устойчивее, чем сами малые вероятности.",
        },
    },
    "log1p": {
        "en": {
            "what": "The logarithm of one plus x, accurate even when x is tiny.",
            "formula": "y = ln(1 + x)",
            "why": "Used in softplus and stable log-sigmoid/binary cross-entropy, where "
                   "computing 1 + x first would round small x away.",
        },
        "ru": {
            "what": "Логарифм от единицы плюс x, точный даже при очень малых x.",
            "formula": "y = ln(1 + x)",
            "why": "Применяется в softplus и в устойчивых log-сигмоиде и бинарной "
                   "кросс-энтропии: если сначала вычислить 1 + x, малое x потеряется "
                   "при округлении.",
        },
    },
    "expm1": {
        "en": {
            "what": "The exponential minus one, accurate even when x is tiny.",
            "formula": "y = eˣ − 1",
            "why": "Used by activations such as ELU/SELU for negative inputs, where eˣ − 1 "
                   "computed naively loses precision near zero.",
        },
        "ru": {
            "what": "Экспонента минус единица, точная даже при очень малых x.",
            "formula": "y = eˣ − 1",
            "why": "Используется в активациях ELU/SELU для отрицательных входов: наивное "
                   "вычисление eˣ − 1 теряет точность около нуля.",
        },
    },
    "sqrt": {
        "en": {
            "what": "The square root of every element.",
            "formula": "y = √x",
            "why": "Normalisation divides by a standard deviation √(σ² + ε), and Adam divides "
                   "by the square root of the running mean of squared gradients.",
        },
        "ru": {
            "what": "Квадратный корень каждого элемента.",
            "formula": "y = √x",
            "why": "Нормализация делит на стандартное отклонение √(σ² + ε), а Adam делит на "
                   "корень из скользящего среднего квадратов градиента.",
        },
    },
    "sin": {
        "en": {
            "what": "The sine of every element (in radians).",
            "formula": "y = sin x",
            "why": "Sinusoidal positional encodings and rotary embeddings (RoPE) use it to "
                   "tell the model where each token is.",
        },
        "ru": {
            "what": "Синус каждого элемента (в радианах).",
            "formula": "y = sin x",
            "why": "Синусоидальное позиционное кодирование и rotary-эмбеддинги (RoPE) "
                   "используют его, чтобы сообщить модели положение каждого токена.",
        },
    },
    "cos": {
        "en": {
            "what": "The cosine of every element (in radians).",
            "formula": "y = cos x",
            "why": "Paired with sine in positional encodings and RoPE; also in cosine "
                   "learning-rate schedules.",
        },
        "ru": {
            "what": "Косинус каждого элемента (в радианах).",
            "formula": "y = cos x",
            "why": "Используется вместе с синусом в позиционном кодировании и RoPE, а также "
                   "в косинусном расписании скорости обучения.",
        },
    },
    "tanh": {
        "en": {
            "what": "The hyperbolic tangent: squashes every element into (−1, 1).",
            "formula": "y = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)",
            "why": "A smooth, zero-centred activation (RNNs, the tanh approximation of GELU), "
                   "and a way to bound outputs.",
        },
        "ru": {
            "what": "Гиперболический тангенс: сжимает каждый элемент в интервал (−1, 1).",
            "formula": "y = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)",
            "why": "Гладкая функция активации с центром в нуле (RNN, tanh-приближение GELU); "
                   "также ограничивает выходы.",
        },
    },
    "erf": {
        "en": {
            "what": "The Gauss error function of every element, with values in (−1, 1).",
            "formula": "y = (2/√π) ∫₀ˣ e^(−t²) dt",
            "why": "The exact GELU activation of Transformers is x·½(1 + erf(x/√2)), the "
                   "normal distribution's CDF times x.",
        },
        "ru": {
            "what": "Функция ошибок Гаусса для каждого элемента, значения в (−1, 1).",
            "formula": "y = (2/√π) ∫₀ˣ e^(−t²) dt",
            "why": "Точная активация GELU в трансформерах равна x·½(1 + erf(x/√2)) — функция "
                   "нормального распределения, умноженная на x.",
        },
    },
    # --- binary elementwise (operands broadcast together) -------------------------------
    "add": {
        "en": {
            "what": "Adds two arrays element by element (broadcasting their shapes).",
            "formula": "y = a + b",
            "why": "Adds biases, residual (skip) connections and positional embeddings, "
                   "and sums gradients that reach a value along several paths.",
        },
        "ru": {
            "what": "Поэлементно складывает два массива (с broadcasting их форм).",
            "formula": "y = a + b",
            "why": "Прибавляет смещения, остаточные (skip) связи и позиционные эмбеддинги, "
                   "а также суммирует градиенты, пришедшие к значению по нескольким путям.",
        },
    },
    "sub": {
        "en": {
            "what": "Subtracts the second array from the first, element by element.",
            "formula": "y = a − b",
            "why": "Errors (prediction − target), centring by the mean in normalisation, "
                   "and the update step w − η·g of gradient descent.",
        },
        "ru": {
            "what": "Поэлементно вычитает второй массив из первого.",
            "formula": "y = a − b",
            "why": "Ошибки (предсказание − цель), центрирование на среднее при нормализации "
                   "и шаг градиентного спуска w − η·g.",
        },
    },
    "mul": {
        "en": {
            "what": "Multiplies two arrays element by element.",
            "formula": "y = a · b",
            "why": "Scaling (γ in normalisation, learning rates), masks and gates, and the "
                   "chain rule: most gradients are a product of local derivatives.",
        },
        "ru": {
            "what": "Поэлементно умножает два массива.",
            "formula": "y = a · b",
            "why": "Масштабирование (γ в нормализации, скорость обучения), маски и гейты, "
                   "а также цепное правило: большинство градиентов — произведения локальных "
                   "производных.",
        },
    },
    "div": {
        "en": {
            "what": "Divides the first array by the second, element by element "
                    "(true division, floating point).",
            "formula": "y = a / b",
            "why": "Averages (sum / n), normalising by a standard deviation, softmax's "
                   "division by the sum, and attention's scaling by √d.",
        },
        "ru": {
            "what": "Поэлементно делит первый массив на второй (обычное деление, "
                    "с плавающей точкой).",
            "formula": "y = a / b",
            "why": "Средние (сумма / n), деление на стандартное отклонение при нормализации, "
                   "деление на сумму в softmax и масштабирование на √d во внимании.",
        },
    },
    "floor_div": {
        "en": {
            "what": "Integer-style division rounded down (towards minus infinity).",
            "formula": "y = ⌊a / b⌋",
            "why": "Index arithmetic: turning a flat index into a row (i // width), "
                   "e.g. in pooling and reshaping.",
        },
        "ru": {
            "what": "Деление с округлением вниз (к минус бесконечности).",
            "formula": "y = ⌊a / b⌋",
            "why": "Арифметика индексов: перевод плоского индекса в номер строки "
                   "(i // ширина), например в пулинге.",
        },
    },
    "mod": {
        "en": {
            "what": "The remainder of division, with the sign of the divisor (as in Python).",
            "formula": "y = a − b·⌊a / b⌋",
            "why": "Index arithmetic: the column of a flat index (i % width), and wrapping "
                   "values around a period.",
        },
        "ru": {
            "what": "Остаток от деления со знаком делителя (как в Python).",
            "formula": "y = a − b·⌊a / b⌋",
            "why": "Арифметика индексов: номер столбца по плоскому индексу (i % ширина) и "
                   "циклическое «заворачивание» значений.",
        },
    },
    "pow": {
        "en": {
            "what": "Raises each element of the first array to the power of the second.",
            "formula": "y = aᵇ",
            "why": "Squares in variances and mean squared error, inverse square roots, "
                   "and the bias correction βᵗ in Adam.",
        },
        "ru": {
            "what": "Возводит каждый элемент первого массива в степень из второго.",
            "formula": "y = aᵇ",
            "why": "Квадраты в дисперсии и среднеквадратичной ошибке, обратные корни и "
                   "поправка βᵗ в Adam.",
        },
    },
    "maximum": {
        "en": {
            "what": "The larger of two values, element by element.",
            "formula": "y = max(a, b)",
            "why": "ReLU is maximum(x, 0); also clipping from below and avoiding division "
                   "by zero.",
        },
        "ru": {
            "what": "Большее из двух значений, поэлементно.",
            "formula": "y = max(a, b)",
            "why": "ReLU — это maximum(x, 0); также ограничение снизу и защита от деления "
                   "на ноль.",
        },
    },
    "minimum": {
        "en": {
            "what": "The smaller of two values, element by element.",
            "formula": "y = min(a, b)",
            "why": "Clipping from above (e.g. ReLU6, gradient or probability clipping).",
        },
        "ru": {
            "what": "Меньшее из двух значений, поэлементно.",
            "formula": "y = min(a, b)",
            "why": "Ограничение сверху (например, ReLU6, отсечение градиентов или "
                   "вероятностей).",
        },
    },
    # --- comparisons (boolean results, not differentiable) ------------------------------
    "less": {
        "en": {
            "what": "True where the first value is smaller than the second.",
            "formula": "y = a < b",
            "why": "Builds masks: dropout keeps a unit where a random number is below the "
                   "keep probability; causal masks compare positions.",
        },
        "ru": {
            "what": "Истина там, где первое значение меньше второго.",
            "formula": "y = a < b",
            "why": "Строит маски: dropout сохраняет нейрон, если случайное число меньше "
                   "вероятности сохранения; каузальная маска сравнивает позиции.",
        },
    },
    "less_equal": {
        "en": {
            "what": "True where the first value is smaller than or equal to the second.",
            "formula": "y = a ≤ b",
            "why": "Masks and conditions, e.g. a causal mask (key position ≤ query "
                   "position).",
        },
        "ru": {
            "what": "Истина там, где первое значение меньше второго или равно ему.",
            "formula": "y = a ≤ b",
            "why": "Маски и условия, например каузальная маска (позиция ключа ≤ позиции "
                   "запроса).",
        },
    },
    "greater": {
        "en": {
            "what": "True where the first value is larger than the second.",
            "formula": "y = a > b",
            "why": "The gradient of ReLU passes only where x > 0; also thresholds that "
                   "turn probabilities into class predictions.",
        },
        "ru": {
            "what": "Истина там, где первое значение больше второго.",
            "formula": "y = a > b",
            "why": "Градиент ReLU проходит только там, где x > 0; также пороги, "
                   "превращающие вероятности в предсказанные классы.",
        },
    },
    "greater_equal": {
        "en": {
            "what": "True where the first value is larger than or equal to the second.",
            "formula": "y = a ≥ b",
            "why": "Masks, thresholds and range checks.",
        },
        "ru": {
            "what": "Истина там, где первое значение больше второго или равно ему.",
            "formula": "y = a ≥ b",
            "why": "Маски, пороги и проверки диапазона.",
        },
    },
    "equal": {
        "en": {
            "what": "True where the two values are equal.",
            "formula": "y = (a = b)",
            "why": "Accuracy (prediction = label), one-hot encodings, and finding where a "
                   "maximum was in max-reductions and pooling.",
        },
        "ru": {
            "what": "Истина там, где значения равны.",
            "formula": "y = (a = b)",
            "why": "Точность (предсказание = метка), one-hot-кодирование и поиск места "
                   "максимума в редукции max и пулинге.",
        },
    },
    "not_equal": {
        "en": {
            "what": "True where the two values differ.",
            "formula": "y = (a ≠ b)",
            "why": "Masks such as ignoring padding tokens (token ≠ pad id) in a loss.",
        },
        "ru": {
            "what": "Истина там, где значения различаются.",
            "formula": "y = (a ≠ b)",
            "why": "Маски, например чтобы не учитывать в функции потерь токены-заполнители "
                   "(токен ≠ id паддинга).",
        },
    },
    "where": {
        "en": {
            "what": "Picks from x where the condition is true and from y elsewhere, "
                    "element by element.",
            "formula": "out = cond ? x : y",
            "why": "Applies masks (e.g. −∞ on future positions before softmax), piecewise "
                   "functions such as ReLU's gradient or the Huber loss.",
        },
        "ru": {
            "what": "Поэлементно берёт значение из x, где условие истинно, и из y — "
                    "в остальных местах.",
            "formula": "out = cond ? x : y",
            "why": "Применяет маски (например, −∞ на будущих позициях перед softmax) и "
                   "кусочные функции, как градиент ReLU или функция Хьюбера.",
        },
    },
    # --- identity-like ----------------------------------------------------------------
    "stop_gradient": {
        "en": {
            "what": "Passes its input through unchanged, but no gradient flows back "
                    "through it.",
            "formula": "y = x,  ∂y/∂x = 0",
            "why": "Treats a value as a constant during training: target networks, the "
                   "max subtracted in a stable softmax, straight-through estimators.",
        },
        "ru": {
            "what": "Передаёт вход без изменений, но градиент через него обратно не идёт.",
            "formula": "y = x,  ∂y/∂x = 0",
            "why": "Делает значение константой при обучении: целевые сети, вычитаемый "
                   "максимум в устойчивом softmax, straight-through-оценки.",
        },
    },
    "cast": {
        "en": {
            "what": "Converts the element type (dtype), e.g. int32 to float32; "
                    "floats become ints by truncation towards zero.",
            "formula": "y = dtype(x)",
            "why": "Labels and masks are integers or booleans but arithmetic needs floats; "
                   "mixed precision switches between float16 and float32.",
        },
        "ru": {
            "what": "Меняет тип элементов (dtype), например int32 на float32; дробные числа "
                    "в целые отбрасыванием дробной части (к нулю).",
            "formula": "y = dtype(x)",
            "why": "Метки и маски — целые или булевы значения, а арифметике нужны числа с "
                   "плавающей точкой; смешанная точность переключает float16 и float32.",
        },
    },
    # --- reductions -------------------------------------------------------------------
    "sum": {
        "en": {
            "what": "Adds up the elements along the given axes (optionally keeping them as "
                    "size-1 axes).",
            "formula": "y = Σᵢ xᵢ",
            "why": "Means, losses over a batch, softmax denominators, and the gradient of "
                   "broadcasting: a broadcast value collects the sum of its gradients.",
        },
        "ru": {
            "what": "Суммирует элементы по заданным осям (можно сохранить их размером 1).",
            "formula": "y = Σᵢ xᵢ",
            "why": "Средние, функция потерь по батчу, знаменатель softmax и градиент "
                   "broadcasting: размноженное значение получает сумму своих градиентов.",
        },
    },
    "max": {
        "en": {
            "what": "The largest element along the given axes; its gradient is shared "
                    "evenly between ties.",
            "formula": "y = maxᵢ xᵢ",
            "why": "Subtracted from logits to make softmax and log-sum-exp numerically "
                   "stable; also global max pooling.",
        },
        "ru": {
            "what": "Наибольший элемент по заданным осям; при равных максимумах градиент "
                    "делится между ними поровну.",
            "formula": "y = maxᵢ xᵢ",
            "why": "Вычитается из логитов, чтобы softmax и log-sum-exp были численно "
                   "устойчивы; также глобальный max-пулинг.",
        },
    },
    "argmax": {
        "en": {
            "what": "The index (int32) of the first largest element along an axis; "
                    "not differentiable.",
            "formula": "y = argmaxᵢ xᵢ",
            "why": "Turns scores into a predicted class or the next token in greedy "
                   "decoding, and computes accuracy.",
        },
        "ru": {
            "what": "Индекс (int32) первого наибольшего элемента вдоль оси; "
                    "недифференцируем.",
            "formula": "y = argmaxᵢ xᵢ",
            "why": "Превращает оценки в предсказанный класс или следующий токен при жадном "
                   "декодировании; нужен для подсчёта точности.",
        },
    },
    # --- shape ------------------------------------------------------------------------
    "reshape": {
        "en": {
            "what": "The same elements in the same order, viewed with a new shape "
                    "(one size may be −1 and is inferred).",
            "formula": "y = x viewed as shape s, size(y) = size(x)",
            "why": "Flattens images before a linear layer and splits the model width into "
                   "attention heads ([B, T, D] → [B, T, H, D/H]).",
        },
        "ru": {
            "what": "Те же элементы в том же порядке, но с новой формой (один размер может "
                    "быть −1 и вычисляется сам).",
            "formula": "y = x в форме s, size(y) = size(x)",
            "why": "Выпрямляет изображения перед линейным слоем и делит ширину модели на "
                   "головы внимания ([B, T, D] → [B, T, H, D/H]).",
        },
    },
    "transpose": {
        "en": {
            "what": "Permutes the axes: output axis i is input axis perm[i].",
            "formula": "shape(y)[k] = shape(x)[perm[k]], e.g. 2-d: yᵢⱼ = xⱼᵢ",
            "why": "Kᵀ in attention scores QKᵀ, moving the head axis next to the batch axis, "
                   "and the gradient of matmul (which multiplies by transposed operands).",
        },
        "ru": {
            "what": "Переставляет оси: ось i выхода — это ось perm[i] входа.",
            "formula": "shape(y)[k] = shape(x)[perm[k]], для 2-d: yᵢⱼ = xⱼᵢ",
            "why": "Kᵀ в оценках внимания QKᵀ, перенос оси голов к оси батча и градиент "
                   "matmul (который умножает на транспонированные операнды).",
        },
    },
    "broadcast_to": {
        "en": {
            "what": "Repeats size-1 (or missing leading) axes until the array has the "
                    "requested shape.",
            "formula": "y[i, j] = x[0, j] for every i (along stretched axes)",
            "why": "Lets one bias, scale or mean apply to a whole batch without copying it "
                   "by hand; its gradient sums over the repeated axes.",
        },
        "ru": {
            "what": "Повторяет оси размера 1 (или недостающие ведущие оси), пока массив "
                    "не примет нужную форму.",
            "formula": "y[i, j] = x[0, j] для всех i (по растянутым осям)",
            "why": "Позволяет применить одно смещение, масштаб или среднее ко всему батчу; "
                   "его градиент суммирует по повторённым осям.",
        },
    },
    "slice": {
        "en": {
            "what": "Takes a regular sub-array: per axis a start, stop and step.",
            "formula": "y = x[start:stop:step, …]",
            "why": "Crops sequences and images, splits a fused QKV projection into Q, K "
                   "and V, and takes the last token's logits.",
        },
        "ru": {
            "what": "Берёт регулярный подмассив: по каждой оси начало, конец и шаг.",
            "formula": "y = x[start:stop:step, …]",
            "why": "Обрезает последовательности и изображения, делит общую проекцию QKV на "
                   "Q, K и V, берёт логиты последнего токена.",
        },
    },
    "pad": {
        "en": {
            "what": "Surrounds the array with a constant value: per axis some elements "
                    "before (low), after (high) and between neighbours (interior).",
            "formula": "y = [c…c, x₀, c…c, x₁, …, c…c], with low / interior / high "
                       "copies of c",
            "why": "Zero padding keeps a convolution's output size; interior padding is the "
                   "gradient of a strided slice; sequences are padded to one length.",
        },
        "ru": {
            "what": "Окружает массив постоянным значением: по каждой оси элементы перед "
                    "(low), после (high) и между соседями (interior).",
            "formula": "y = [c…c, x₀, c…c, x₁, …, c…c], где low / interior / high копий c",
            "why": "Нулевой паддинг сохраняет размер выхода свёртки; внутренний паддинг — "
                   "градиент среза с шагом; последовательности дополняются до одной длины.",
        },
    },
    "concatenate": {
        "en": {
            "what": "Joins arrays end to end along one axis; all other sizes must agree.",
            "formula": "y = [a ‖ b ‖ …] along the axis",
            "why": "Joins attention heads back together, stacks features from several "
                   "branches (U-Net skips, Inception) and appends tokens.",
        },
        "ru": {
            "what": "Соединяет массивы друг за другом вдоль одной оси; остальные размеры "
                    "должны совпадать.",
            "formula": "y = [a ‖ b ‖ …] вдоль оси",
            "why": "Снова объединяет головы внимания, складывает признаки нескольких ветвей "
                   "(skip-связи U-Net, Inception) и дописывает токены.",
        },
    },
    # --- linear algebra and indexing --------------------------------------------------
    "matmul": {
        "en": {
            "what": "Matrix multiplication, batched over leading axes (numpy's matmul).",
            "formula": "y = x₁·x₂,  yᵢⱼ = Σₖ x₁ᵢₖ x₂ₖⱼ",
            "why": "The workhorse of deep learning: linear layers (x·Wᵀ), attention "
                   "(QKᵀ and the weighted sum of V) and most of the compute time.",
        },
        "ru": {
            "what": "Матричное умножение, пакетное по ведущим осям (как matmul в numpy).",
            "formula": "y = x₁·x₂,  yᵢⱼ = Σₖ x₁ᵢₖ x₂ₖⱼ",
            "why": "Главная операция глубокого обучения: линейные слои (x·Wᵀ), внимание "
                   "(QKᵀ и взвешенная сумма V) и большая часть времени вычислений.",
        },
    },
    "gather": {
        "en": {
            "what": "Picks slices of x at the given integer indices along one axis.",
            "formula": "y[…, j, …] = x[…, idx[j], …]",
            "why": "Embedding lookup (one row per token id), picking the logit of the true "
                   "class in cross-entropy, and max pooling.",
        },
        "ru": {
            "what": "Выбирает срезы x по заданным целочисленным индексам вдоль одной оси.",
            "formula": "y[…, j, …] = x[…, idx[j], …]",
            "why": "Поиск эмбеддингов (строка на каждый id токена), выбор логита верного "
                   "класса в кросс-энтропии и max-пулинг.",
        },
    },
    "scatter_add": {
        "en": {
            "what": "The reverse of gather: adds updates into a zero array at the given "
                    "indices along one axis; repeated indices add up.",
            "formula": "y = 0;  y[…, idx[j], …] += u[…, j, …]",
            "why": "The gradient of gather: each embedding row collects the gradients of "
                   "every place its token was used.",
        },
        "ru": {
            "what": "Обратная к gather операция: прибавляет обновления в нулевой массив по "
                    "заданным индексам вдоль оси; повторные индексы суммируются.",
            "formula": "y = 0;  y[…, idx[j], …] += u[…, j, …]",
            "why": "Градиент gather: каждая строка эмбеддингов собирает градиенты всех мест, "
                   "где встретился её токен.",
        },
    },
    "random_bits": {
        "en": {
            "what": "Random 32-bit integers made from a key by a counter-based generator "
                    "(Threefry-2x32): the same key always gives the same bits.",
            "formula": "y = Threefry₂ₓ₃₂(key, counter), uint32[shape]",
            "why": "Reproducible randomness inside a compiled graph: dropout masks, "
                   "weight initialisation and sampling, split by key rather than by state.",
        },
        "ru": {
            "what": "Случайные 32-битные целые, полученные из ключа генератором на счётчиках "
                    "(Threefry-2x32): один и тот же ключ всегда даёт те же биты.",
            "formula": "y = Threefry₂ₓ₃₂(key, counter), uint32[shape]",
            "why": "Воспроизводимая случайность внутри скомпилированного графа: маски "
                   "dropout, инициализация весов и сэмплирование — через ключи, а не "
                   "через скрытое состояние.",
        },
    },
    # --- fusion ------------------------------------------------------------------------
    # --- control flow: ops holding sub-graphs ------------------------------------------
    "scan": {
        "en": {
            "what": "A loop traced once: its body is a small graph run once per step along "
                    "the leading axis of the scanned arrays, carrying state from step to "
                    "step (an RNN, a cumulative sum). One node per result of the loop.",
            "formula": "carry_t, y_t = body(carry_{t-1}, x_t); results: carry_T and the y_t "
                       "stacked",
            "why": "A Python loop would copy its body into the graph once per step; a scan "
                   "keeps the graph the same size for any sequence length, and its gradient "
                   "is a reverse scan over the carries it kept.",
        },
        "ru": {
            "what": "Цикл, оттрассированный один раз: его тело — маленький граф, который "
                    "выполняется на каждом шаге вдоль первой оси входных массивов и передаёт "
                    "состояние от шага к шагу (RNN, накопленная сумма). Один узел на каждый "
                    "результат цикла.",
            "formula": "carry_t, y_t = body(carry_{t-1}, x_t); результаты: carry_T и y_t, "
                       "сложенные в массив",
            "why": "Цикл на Python копирует тело в граф на каждом шаге; scan сохраняет размер "
                   "графа при любой длине последовательности, а его градиент — обратный scan "
                   "по сохранённым состояниям.",
        },
    },
    "cond": {
        "en": {
            "what": "A choice between two sub-graphs by a scalar predicate computed at run "
                    "time; only the chosen branch runs.",
            "formula": "y = true_branch(x) if pred else false_branch(x)",
            "why": "Python's `if` cannot look at a traced value; cond records both branches "
                   "and decides when the graph runs. Its gradient is a cond of the branches' "
                   "gradients.",
        },
        "ru": {
            "what": "Выбор между двумя подграфами по скалярному условию, вычисленному во "
                    "время выполнения; выполняется только выбранная ветвь.",
            "formula": "y = true_branch(x) если pred, иначе false_branch(x)",
            "why": "Оператор `if` в Python не может прочитать трассируемое значение; cond "
                   "записывает обе ветви и выбирает при запуске графа. Его градиент — cond "
                   "из градиентов ветвей.",
        },
    },
    "while_loop": {
        "en": {
            "what": "A loop whose body sub-graph runs while a predicate sub-graph holds on "
                    "the carried values; the number of steps is known only at run time.",
            "formula": "while cond(carry): carry = body(carry)",
            "why": "Iterations until convergence or a data-dependent count. Having no static "
                   "trip count, it has no reverse-mode gradient (use scan or fori_loop with "
                   "fixed bounds for that).",
        },
        "ru": {
            "what": "Цикл, тело которого (подграф) выполняется, пока условие (другой подграф) "
                    "истинно для переносимых значений; число шагов известно только при "
                    "выполнении.",
            "formula": "пока cond(carry): carry = body(carry)",
            "why": "Итерации до сходимости или с числом шагов, зависящим от данных. Без "
                   "заранее известного числа шагов у него нет обратного градиента (для "
                   "этого нужен scan или fori_loop с постоянными границами).",
        },
    },
    "remat": {
        "en": {
            "what": "A checkpointed block (pyasg.checkpoint): its sub-graph runs in the "
                    "forward pass, and its gradient computes it again instead of keeping "
                    "its intermediate values.",
            "formula": "y = f(x); backward: recompute f(x), then its vector-Jacobian product",
            "why": "Trades compute for memory: only the block's inputs stay alive between "
                   "the forward and backward passes, so deep models fit in less memory.",
        },
        "ru": {
            "what": "Блок с контрольной точкой (pyasg.checkpoint): его подграф выполняется "
                    "в прямом проходе, а градиент вычисляет его заново вместо хранения "
                    "промежуточных значений.",
            "formula": "y = f(x); назад: заново f(x), затем произведение вектора на якобиан",
            "why": "Обмен вычислений на память: между прямым и обратным проходом хранятся "
                   "только входы блока, и глубокие модели помещаются в меньшую память.",
        },
    },
    "fused": {
        "en": {
            "what": "A group of elementwise ops (with a reduction or matmul they feed or "
                    "follow) that the compiler runs as ONE kernel; it holds the group as "
                    "its own small graph.",
            "formula": "y = g(x₁, …, xₖ), g the sub-graph: one pass over memory instead of "
                       "one per op",
            "why": "Each separate op reads and writes the whole tensor; fusing a chain "
                   "(bias, activation, normalisation arithmetic) saves memory traffic and "
                   "kernel launches, which dominate small and elementwise-heavy models.",
        },
        "ru": {
            "what": "Группа поэлементных операций (вместе с редукцией или матричным "
                    "умножением рядом с ними), которую компилятор выполняет ОДНИМ ядром; "
                    "группа хранится как отдельный маленький граф.",
            "formula": "y = g(x₁, …, xₖ), g — подграф: один проход по памяти вместо "
                       "прохода на каждую операцию",
            "why": "Каждая отдельная операция читает и пишет весь тензор; слияние цепочки "
                   "(смещение, активация, арифметика нормализации) экономит обращения к "
                   "памяти и запуски ядер, которые и определяют скорость небольших моделей.",
        },
    },
    # --- custom derivatives -------------------------------------------------------------
    "custom_call": {
        "en": {
            "what": "A call of a function whose derivative the user wrote "
                    "(pyasg.custom_vjp / custom_jvp); it holds the function as its own "
                    "small graph, which the compiler inlines.",
            "formula": "y = f(x₁, …, xₖ), with the user's rule for its gradient or tangent",
            "why": "For a derivative that is more stable or cheaper than the automatic "
                   "one (log(1 + eˣ), a norm at 0) or changed on purpose (gradient "
                   "clipping).",
        },
        "ru": {
            "what": "Вызов функции, производную которой задал пользователь "
                    "(pyasg.custom_vjp / custom_jvp); функция хранится как отдельный "
                    "маленький граф, который компилятор встраивает на место вызова.",
            "formula": "y = f(x₁, …, xₖ) с пользовательским правилом для градиента или "
                       "касательной",
            "why": "Когда своя производная устойчивее или дешевле автоматической "
                   "(log(1 + eˣ), норма в нуле) или изменена намеренно (обрезка градиента).",
        },
    },
    # --- attention ----------------------------------------------------------------------
    "attention": {
        "en": {
            "what": "Scaled dot-product attention in one op: every query row takes a "
                    "softmax-weighted average of the value rows, weighted by how well it "
                    "matches each key (causal, padding and additive masks in its bias).",
            "formula": "y = softmax(q·kᵀ·scale + bias) · v, per batch and head",
            "why": "How a transformer mixes information between positions; as one op the "
                   "GPU never writes the T×S score matrix (flash attention), so long "
                   "sequences fit in memory.",
        },
        "ru": {
            "what": "Масштабированное скалярное внимание одной операцией: каждая строка "
                    "запросов берёт взвешенное softmax среднее строк значений, по тому, "
                    "насколько она совпадает с каждым ключом (маски — в смещении bias).",
            "formula": "y = softmax(q·kᵀ·scale + bias) · v, для каждого батча и головы",
            "why": "Так трансформер смешивает информацию между позициями; одной операцией "
                   "GPU не записывает матрицу оценок T×S (flash attention), и длинные "
                   "последовательности помещаются в память.",
        },
    },
    "attention_lse": {
        "en": {
            "what": "The log-sum-exp of each query row's attention scores, kept for the "
                    "backward pass of attention.",
            "formula": "lseᵢ = log Σⱼ exp(sᵢⱼ),  s = q·kᵀ·scale + bias",
            "why": "With it the gradient kernels recompute every probability as "
                   "exp(s − lse) block by block instead of storing the T×S matrix.",
        },
        "ru": {
            "what": "Логарифм суммы экспонент оценок внимания каждой строки запросов; "
                    "нужен обратному проходу внимания.",
            "formula": "lseᵢ = log Σⱼ exp(sᵢⱼ),  s = q·kᵀ·scale + bias",
            "why": "С ним ядра градиента заново вычисляют каждую вероятность как "
                   "exp(s − lse) по блокам, не храня матрицу T×S.",
        },
    },
    "attention_grad_q": {
        "en": {
            "what": "The gradient of attention with respect to the queries.",
            "formula": "∂L/∂qᵢ = scale · Σⱼ pᵢⱼ (∂L/∂yᵢ·vⱼ − δᵢ) kⱼ,  δᵢ = ∂L/∂yᵢ·yᵢ",
            "why": "Backpropagation through attention to the query projection, computed "
                   "block by block from the recomputed probabilities.",
        },
        "ru": {
            "what": "Градиент внимания по запросам.",
            "formula": "∂L/∂qᵢ = scale · Σⱼ pᵢⱼ (∂L/∂yᵢ·vⱼ − δᵢ) kⱼ,  δᵢ = ∂L/∂yᵢ·yᵢ",
            "why": "Обратное распространение через внимание к проекции запросов, по блокам "
                   "из заново вычисленных вероятностей.",
        },
    },
    "attention_grad_k": {
        "en": {
            "what": "The gradient of attention with respect to the keys.",
            "formula": "∂L/∂kⱼ = scale · Σᵢ pᵢⱼ (∂L/∂yᵢ·vⱼ − δᵢ) qᵢ",
            "why": "Backpropagation through attention to the key projection: each key "
                   "learns from every query that attended to it.",
        },
        "ru": {
            "what": "Градиент внимания по ключам.",
            "formula": "∂L/∂kⱼ = scale · Σᵢ pᵢⱼ (∂L/∂yᵢ·vⱼ − δᵢ) qᵢ",
            "why": "Обратное распространение через внимание к проекции ключей: каждый ключ "
                   "учится у всех запросов, которые на него смотрели.",
        },
    },
    "attention_grad_v": {
        "en": {
            "what": "The gradient of attention with respect to the values.",
            "formula": "∂L/∂vⱼ = Σᵢ pᵢⱼ ∂L/∂yᵢ",
            "why": "Each value row receives the output gradients of the queries, weighted "
                   "by how much they attended to it.",
        },
        "ru": {
            "what": "Градиент внимания по значениям.",
            "formula": "∂L/∂vⱼ = Σᵢ pᵢⱼ ∂L/∂yᵢ",
            "why": "Каждая строка значений получает градиенты выходов запросов, взвешенные "
                   "тем, насколько они на неё смотрели.",
        },
    },
    "attention_grad_scores": {
        "en": {
            "what": "The gradient of attention with respect to its scores (and so its "
                    "additive bias), a full [B, H, T, S] array.",
            "formula": "∂L/∂sᵢⱼ = pᵢⱼ (∂L/∂yᵢ·vⱼ − δᵢ)",
            "why": "Needed only when the bias itself learns (a learned relative position "
                   "bias); summed over the bias's broadcast axes.",
        },
        "ru": {
            "what": "Градиент внимания по его оценкам (а значит, по аддитивному смещению) — "
                    "полный массив [B, H, T, S].",
            "formula": "∂L/∂sᵢⱼ = pᵢⱼ (∂L/∂yᵢ·vⱼ − δᵢ)",
            "why": "Нужен, только когда само смещение обучается (обучаемое относительное "
                   "позиционное смещение); суммируется по осям его трансляции.",
        },
    },
    # --- convolution and pooling ------------------------------------------------------
    "conv2d": {
        "en": {
            "what": "2-d convolution (cross-correlation, as in PyTorch): slides learned "
                    "filters w [O, C/groups, kh, kw] over an image x [N, C, H, W].",
            "formula": "y[n, o, i, j] = Σ_c,u,v x[n, c, s·i + d·u − p, s·j + d·v − p] · "
                       "w[o, c, u, v]",
            "why": "Detects local patterns (edges, textures, parts) with few weights shared "
                   "across positions; the basis of CNNs for images.",
        },
        "ru": {
            "what": "Двумерная свёртка (кросс-корреляция, как в PyTorch): скользит "
                    "обучаемыми фильтрами w [O, C/groups, kh, kw] по изображению "
                    "x [N, C, H, W].",
            "formula": "y[n, o, i, j] = Σ_c,u,v x[n, c, s·i + d·u − p, s·j + d·v − p] · "
                       "w[o, c, u, v]",
            "why": "Находит локальные узоры (края, текстуры, части объектов) малым числом "
                   "весов, общих для всех позиций; основа свёрточных сетей.",
        },
    },
    "conv2d_backward_input": {
        "en": {
            "what": "The gradient of conv2d with respect to its input; the same operation "
                    "is the transposed convolution.",
            "formula": "∂L/∂x = conv_transpose2d(∂L/∂y, w)",
            "why": "Backpropagation through a convolution, and learned upsampling in "
                   "decoders, GANs and U-Nets (ConvTranspose2d).",
        },
        "ru": {
            "what": "Градиент conv2d по входу; та же операция — транспонированная свёртка.",
            "formula": "∂L/∂x = conv_transpose2d(∂L/∂y, w)",
            "why": "Обратное распространение через свёртку, а также обучаемое "
                   "увеличение разрешения в декодерах, GAN и U-Net (ConvTranspose2d).",
        },
    },
    "conv2d_backward_weight": {
        "en": {
            "what": "The gradient of conv2d with respect to its kernel, of the kernel's "
                    "spatial size.",
            "formula": "∂L/∂w[o, c, u, v] = Σ_n,i,j ∂L/∂y[n, o, i, j] · "
                       "x[n, c, s·i + d·u − p, s·j + d·v − p]",
            "why": "Tells the optimiser how to change each filter: it correlates the inputs "
                   "with the output gradients.",
        },
        "ru": {
            "what": "Градиент conv2d по ядру свёртки, размером с ядро.",
            "formula": "∂L/∂w[o, c, u, v] = Σ_n,i,j ∂L/∂y[n, o, i, j] · "
                       "x[n, c, s·i + d·u − p, s·j + d·v − p]",
            "why": "Подсказывает оптимизатору, как менять каждый фильтр: коррелирует входы "
                   "с градиентами выхода.",
        },
    },
    "max_pool2d_indices": {
        "en": {
            "what": "For every pooling window, the flat index (into x.ravel(), int32) of its "
                    "first maximum.",
            "formula": "idx[n, c, i, j] = argmax over the window at (i, j) of x[n, c, ·, ·]",
            "why": "Max pooling is then a gather at these indices and its gradient a "
                   "scatter-add, so the gradient reaches only the winning pixels.",
        },
        "ru": {
            "what": "Для каждого окна пулинга — плоский индекс (в x.ravel(), int32) его "
                    "первого максимума.",
            "formula": "idx[n, c, i, j] = argmax по окну в (i, j) от x[n, c, ·, ·]",
            "why": "Тогда max-пулинг — это gather по этим индексам, а его градиент — "
                   "scatter_add, так что градиент доходит только до «победивших» пикселей.",
        },
    },
}

#: The role of each layer parameter kind ("Kind.name", as in `pyasg.nn.ROLES`).
PARAM_TEXT: dict[str, dict[str, str]] = {
    "GRU.weight_ih": {
        "en": "input-to-hidden weights [3H, in] of one GRU layer, the reset, update and new "
              "gates stacked (PyTorch's order r, z, n)",
        "ru": "веса вход→скрытое состояние [3H, in] одного слоя GRU: вентили сброса, "
              "обновления и нового состояния подряд (порядок PyTorch r, z, n)",
    },
    "GRU.weight_hh": {
        "en": "recurrent weights [3H, H] of one GRU layer: how the previous hidden state "
              "feeds the r, z and n gates",
        "ru": "рекуррентные веса [3H, H] одного слоя GRU: как прошлое скрытое состояние "
              "входит в вентили r, z и n",
    },
    "GRU.bias_ih": {
        "en": "input-side bias [3H] of the r, z and n gates",
        "ru": "смещение [3H] входной части вентилей r, z и n",
    },
    "GRU.bias_hh": {
        "en": "recurrent-side bias [3H] of the r, z and n gates (b_hn is inside r ⊙ (…))",
        "ru": "смещение [3H] рекуррентной части вентилей r, z и n (b_hn стоит внутри r ⊙ (…))",
    },
    "RNN.weight_ih": {
        "en": "input-to-hidden weights [H, in] of one RNN layer",
        "ru": "веса вход→скрытое состояние [H, in] одного слоя RNN",
    },
    "RNN.weight_hh": {
        "en": "recurrent weights [H, H] of one RNN layer: the previous state's contribution",
        "ru": "рекуррентные веса [H, H] одного слоя RNN: вклад прошлого состояния",
    },
    "RNN.bias_ih": {
        "en": "input-side bias [H] of one RNN layer",
        "ru": "смещение [H] входной части одного слоя RNN",
    },
    "RNN.bias_hh": {
        "en": "recurrent-side bias [H] of one RNN layer",
        "ru": "смещение [H] рекуррентной части одного слоя RNN",
    },
    "Linear.weight": {
        "en": "weight matrix [out, in]: maps inputs to outputs (y = x·Wᵀ + b)",
        "ru": "весовая матрица [out, in]: отображает входы в выходы (y = x·Wᵀ + b)",
    },
    "Linear.bias": {
        "en": "bias: a learned offset added to each output",
        "ru": "смещение: обучаемая добавка к каждому выходу",
    },
    "LayerNorm.weight": {
        "en": "scale γ: per-feature gain applied after normalising",
        "ru": "масштаб γ: обучаемый множитель каждого признака после нормализации",
    },
    "LayerNorm.bias": {
        "en": "shift β: per-feature offset added after normalising",
        "ru": "сдвиг β: обучаемая добавка к каждому признаку после нормализации",
    },
    "MultiHeadAttention.w_q": {
        "en": "query projection: maps each position to what it is looking for, "
              "one slice per head",
        "ru": "проекция запросов: отображает каждую позицию в то, что она ищет, "
              "по срезу на каждую голову",
    },
    "MultiHeadAttention.w_k": {
        "en": "key projection: maps each position to what it offers; a query's dot "
              "product with a key scores how well they match",
        "ru": "проекция ключей: отображает каждую позицию в то, что она предлагает; "
              "скалярное произведение запроса и ключа оценивает их соответствие",
    },
    "MultiHeadAttention.w_v": {
        "en": "value projection: maps each position to the content that is mixed into "
              "the output, weighted by the attention scores",
        "ru": "проекция значений: отображает каждую позицию в содержимое, которое "
              "подмешивается в выход с весами внимания",
    },
    "MultiHeadAttention.w_o": {
        "en": "output projection: mixes the joined heads back into the model width",
        "ru": "выходная проекция: смешивает объединённые головы обратно в ширину модели",
    },
    "Embedding.weight": {
        "en": "embedding table [num_embeddings, dim]: one learned vector per token id",
        "ru": "таблица эмбеддингов [num_embeddings, dim]: по обучаемому вектору "
              "на каждый id токена",
    },
    "Conv2d.weight": {
        "en": "convolution kernel [out, in/groups, kh, kw]: one learned filter per "
              "output channel",
        "ru": "ядро свёртки [out, in/groups, kh, kw]: по обучаемому фильтру на каждый "
              "выходной канал",
    },
    "Conv2d.bias": {
        "en": "bias: a learned offset per output channel",
        "ru": "смещение: обучаемая добавка к каждому выходному каналу",
    },
    "ConvTranspose2d.weight": {
        "en": "transposed-convolution kernel [in, out/groups, kh, kw]: learned "
              "upsampling filters",
        "ru": "ядро транспонированной свёртки [in, out/groups, kh, kw]: обучаемые "
              "фильтры увеличения разрешения",
    },
    "ConvTranspose2d.bias": {
        "en": "bias: a learned offset per output channel",
        "ru": "смещение: обучаемая добавка к каждому выходному каналу",
    },
    "BatchNorm.weight": {
        "en": "scale γ: per-channel gain applied after normalising with batch statistics",
        "ru": "масштаб γ: обучаемый множитель каждого канала после нормализации "
              "по статистикам батча",
    },
    "BatchNorm.bias": {
        "en": "shift β: per-channel offset added after normalising with batch statistics",
        "ru": "сдвиг β: обучаемая добавка к каждому каналу после нормализации "
              "по статистикам батча",
    },
    "BatchNorm.running_mean": {
        "en": "running mean: per-channel mean used in evaluation mode (state, not trained)",
        "ru": "скользящее среднее: среднее по каналу для режима оценки (состояние, "
              "не обучается)",
    },
    "BatchNorm.running_var": {
        "en": "running variance: per-channel variance used in evaluation mode "
              "(state, not trained)",
        "ru": "скользящая дисперсия: дисперсия по каналу для режима оценки (состояние, "
              "не обучается)",
    },
    "BatchNorm.num_batches_tracked": {
        "en": "how many training batches have updated the running statistics (state)",
        "ru": "сколько обучающих батчей обновили скользящие статистики (состояние)",
    },
    "LearnedPositionalEmbedding.weight": {
        "en": "position table [max_len, dim]: a learned vector added at each position, "
              "so the model can tell the order of tokens",
        "ru": "таблица позиций [max_len, dim]: обучаемый вектор, прибавляемый на каждой "
              "позиции, чтобы модель различала порядок токенов",
    },
    "FeedForward.fc1": {
        "en": "first feed-forward layer: widens each position to the hidden size, "
              "before the activation",
        "ru": "первый слой feed-forward: расширяет каждую позицию до скрытого размера "
              "перед активацией",
    },
    "FeedForward.fc2": {
        "en": "second feed-forward layer: brings the activated hidden features back to "
              "the model width",
        "ru": "второй слой feed-forward: возвращает активированные скрытые признаки "
              "к ширине модели",
    },
    "TransformerBlock.norm1": {
        "en": "layer norm of the attention branch: before attention (pre-LN, the default) "
              "or after its residual add (post-LN, norm_first=False); keeps the values at "
              "unit scale",
        "ru": "нормализация слоя ветви внимания: перед вниманием (pre-LN, по умолчанию) "
              "или после остаточного сложения (post-LN, norm_first=False); держит "
              "значения в единичном масштабе",
    },
    "TransformerBlock.attn": {
        "en": "self-attention: each position gathers information from the others",
        "ru": "самовнимание: каждая позиция собирает информацию от остальных",
    },
    "TransformerBlock.norm2": {
        "en": "layer norm of the feed-forward branch: before it (pre-LN, the default) or "
              "after its residual add (post-LN, norm_first=False)",
        "ru": "нормализация слоя ветви feed-forward: перед ней (pre-LN, по умолчанию) или "
              "после остаточного сложения (post-LN, norm_first=False)",
    },
    "TransformerBlock.ff": {
        "en": "feed-forward layer: transforms each position on its own",
        "ru": "слой feed-forward: преобразует каждую позицию независимо от других",
    },
}

#: When no layer kind was recorded: (regular expression on the dotted path, kind).
#: The first match wins, so the specific patterns come before the general ones.
PARAM_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"(^|\.)(w_q|q_proj|query)(\.weight)?$", "MultiHeadAttention.w_q"),
    (r"(^|\.)(w_k|k_proj|key)(\.weight)?$", "MultiHeadAttention.w_k"),
    (r"(^|\.)(w_v|v_proj|value)(\.weight)?$", "MultiHeadAttention.w_v"),
    (r"(^|\.)(w_o|o_proj|out_proj)(\.weight)?$", "MultiHeadAttention.w_o"),
    (r"(^|\.)running_mean$", "BatchNorm.running_mean"),
    (r"(^|\.)running_var$", "BatchNorm.running_var"),
    (r"(^|\.)num_batches_tracked$", "BatchNorm.num_batches_tracked"),
    (r"(^|\.)(bn|batch_?norm)\w*\.(weight|gamma)$", "BatchNorm.weight"),
    (r"(^|\.)(bn|batch_?norm)\w*\.(bias|beta)$", "BatchNorm.bias"),
    (r"(^|\.)\w*(norm|ln)\w*\.(weight|gamma)$", "LayerNorm.weight"),
    (r"(^|\.)\w*(norm|ln)\w*\.(bias|beta)$", "LayerNorm.bias"),
    (r"(^|\.)gamma$", "LayerNorm.weight"),
    (r"(^|\.)beta$", "LayerNorm.bias"),
    (r"(^|\.)\w*pos\w*\.weight$", "LearnedPositionalEmbedding.weight"),
    (r"(^|\.)\w*embed\w*\.weight$", "Embedding.weight"),
    (r"(^|\.)\w*(deconv|conv_?t|conv_?transpose|upconv)\w*\.weight$",
     "ConvTranspose2d.weight"),
    (r"(^|\.)\w*conv\w*\.weight$", "Conv2d.weight"),
    (r"(^|\.)\w*conv\w*\.bias$", "Conv2d.bias"),
    (r"(^|\.)fc1(\.weight)?$", "FeedForward.fc1"),
    (r"(^|\.)fc2(\.weight)?$", "FeedForward.fc2"),
    (r"(^|\.)bias$", "Linear.bias"),
    (r"(^|\.)\w*(fc|linear|lin|proj|dense|head|classifier)\w*\.weight$", "Linear.weight"),
)

#: A parameter's parent layer name that makes a generic Linear weight or bias more specific
#: (the training stack records `attn.w_q.weight` as "Linear.weight").
PARAM_CONTEXT: dict[str, str] = {
    "w_q": "MultiHeadAttention.w_q",
    "w_k": "MultiHeadAttention.w_k",
    "w_v": "MultiHeadAttention.w_v",
    "w_o": "MultiHeadAttention.w_o",
    "fc1": "FeedForward.fc1",
    "fc2": "FeedForward.fc2",
}

#: The role of a parameter nothing is known about.
GENERIC_PARAM_TEXT: dict[str, str] = {
    "en": "a learned parameter: adjusted by the optimiser to lower the loss",
    "ru": "обучаемый параметр: оптимизатор подстраивает его, чтобы уменьшить потери",
}

#: The description of an op that has no entry in OPS_TEXT (a viewer must never crash).
GENERIC_OP_TEXT: dict[str, dict[str, str]] = {
    "en": {"what": "An operation without a description yet.", "formula": "y = f(x)",
           "why": "No explanation has been written for this operation."},
    "ru": {"what": "Операция, для которой ещё нет описания.", "formula": "y = f(x)",
           "why": "Пояснение к этой операции пока не написано."},
}

#: Interface labels.
UI_TEXT: dict[str, dict[str, str]] = {
    "search": {"en": "Search", "ru": "Поиск"},
    "loss": {"en": "Loss", "ru": "Потери"},
    "step": {"en": "Step", "ru": "Шаг"},
    "graph": {"en": "Graph", "ru": "Граф"},
    "inspector": {"en": "Inspector", "ru": "Инспектор"},
    "op": {"en": "Op", "ru": "Операция"},
    "attributes": {"en": "Attributes", "ru": "Атрибуты"},
    "shape": {"en": "Shape", "ru": "Форма"},
    "dtype": {"en": "Type", "ru": "Тип"},
    "inputs": {"en": "Inputs", "ru": "Входы"},
    "users": {"en": "Users", "ru": "Потребители"},
    "source": {"en": "Source", "ru": "Исходный код"},
    "what": {"en": "What it does", "ru": "Что делает"},
    "formula": {"en": "Formula", "ru": "Формула"},
    "why": {"en": "Why it is used", "ru": "Зачем нужна"},
    "role": {"en": "Role in this model", "ru": "Роль в этой модели"},
    "parameter": {"en": "Parameter", "ru": "Параметр"},
    "no_selection": {"en": "Click a node to inspect it.",
                     "ru": "Щёлкните по узлу, чтобы посмотреть его."},
    "layer_kind": {"en": "Layer parameter", "ru": "Параметр слоя"},
    "live": {"en": "Live values", "ru": "Значения во время обучения"},
    "live_waiting": {"en": "Waiting for values from the training process…",
                     "ru": "Ждём значения от процесса обучения…"},
    "value": {"en": "Value", "ru": "Значение"},
    "gradient": {"en": "Gradient", "ru": "Градиент"},
    "no_gradient": {"en": "no gradient flows to this node",
                    "ru": "градиент к этому узлу не идёт"},
    "stats": {"en": "min {min:.4g}  max {max:.4g}  mean {mean:.4g}  std {std:.4g}",
              "ru": "мин {min:.4g}  макс {max:.4g}  среднее {mean:.4g}  ст.откл. {std:.4g}"},
    "nonfinite": {"en": "not finite: {n}", "ru": "не конечных: {n}"},
    "at_step": {"en": "at step", "ru": "на шаге"},
    "group_count": {"en": "{n} ops", "ru": "операций: {n}"},
    "collapse": {"en": "Collapse: blocks.*", "ru": "Свернуть: blocks.*"},
    "waiting": {"en": "Waiting for a graph…", "ru": "Ожидание графа…"},
    "running": {"en": "Training in progress", "ru": "Идёт обучение"},
    "finished": {"en": "Run finished", "ru": "Обучение завершено"},
    "failed": {"en": "Run failed: ", "ru": "Ошибка обучения: "},
    "static": {"en": "Saved graph", "ru": "Сохранённый граф"},
    "nodes": {"en": "Nodes", "ru": "Узлы"},
    "group": {"en": "Collapsed group", "ru": "Свёрнутая группа"},
    "bad_message": {"en": "Bad message: ", "ru": "Неверное сообщение: "},
    "bad_collapse": {"en": "Cannot collapse: ", "ru": "Не удалось свернуть: "},
    "details": {"en": "Technical details", "ru": "Технические подробности"},
    "expand": {"en": "Expand", "ru": "Развернуть"},
    # a control-flow node's sub-graphs, opened as graphs of their own (`App.open_body`)
    "open_body": {"en": "Open its body", "ru": "Открыть тело"},
    "open_true": {"en": "Open the true branch", "ru": "Открыть ветку «истина»"},
    "open_false": {"en": "Open the false branch", "ru": "Открыть ветку «ложь»"},
    "open_condition": {"en": "Open the condition", "ru": "Открыть условие"},
    "collapse_scope": {"en": "Collapse {scope}", "ru": "Свернуть {scope}"},
    "expand_all": {"en": "Expand all", "ru": "Развернуть всё"},
    "collapse_all": {"en": "Collapse all", "ru": "Свернуть всё"},
    "fit": {"en": "Fit (F)", "ru": "Вместить (F)"},
    "help": {"en": "Drag: pan · wheel: zoom · F: fit to window · click a [+] box: expand it "
                   "· right-click a box: collapse its scope",
             "ru": "Перетаскивание: сдвиг · колесо: масштаб · F: вместить в окно · щелчок "
                   "по блоку [+]: развернуть · правый щелчок: свернуть область"},
    "legend": {"en": "Colours", "ru": "Цвета"},
    "scope": {"en": "Scope", "ru": "Область"},
    "param_heading": {"en": "Layer parameter: {layer} ({kind})",
                      "ru": "Параметр слоя: {layer} ({kind})"},
    "param_heading_plain": {"en": "Parameter: {layer}", "ru": "Параметр: {layer}"},
    "stat_min": {"en": "min", "ru": "мин"},
    "stat_max": {"en": "max", "ru": "макс"},
    "stat_mean": {"en": "mean", "ru": "среднее"},
    "stat_std": {"en": "std", "ru": "ст. откл."},
    "metric": {"en": "metric", "ru": "метрика"},
}

#: The colour legend's names of the op categories (a category missing here shows as it is).
CATEGORY_TEXT: dict[str, dict[str, str]] = {
    "input": {"en": "input", "ru": "вход"},
    "constant": {"en": "constant", "ru": "константа"},
    "arithmetic": {"en": "arithmetic", "ru": "арифметика"},
    "activation": {"en": "activation", "ru": "активация"},
    "linear": {"en": "linear algebra", "ru": "линейная алгебра"},
    "reduction": {"en": "reduction", "ru": "свёртка по осям"},
    "shape": {"en": "shape", "ru": "форма"},
    "comparison": {"en": "comparison", "ru": "сравнение"},
    "selection": {"en": "selection", "ru": "выбор"},
    "identity": {"en": "identity", "ru": "тождество"},
    "cast": {"en": "type cast", "ru": "приведение типа"},
    "indexing": {"en": "indexing", "ru": "индексирование"},
    "random": {"en": "random", "ru": "случайные числа"},
    "convolution": {"en": "convolution", "ru": "свёртка"},
    "pooling": {"en": "pooling", "ru": "пулинг"},
    "attention": {"en": "attention", "ru": "внимание"},
    "fused": {"en": "fused kernel", "ru": "слитое ядро"},
    "group": {"en": "collapsed module", "ru": "свёрнутый модуль"},
}


def _lang(lang: str | None) -> str:
    return lang if lang in LANGS else LANGS[0]


#: The languages' names as people type them (any case), by code.
LANGUAGE_NAMES: dict[str, str] = {"english": "en", "russian": "ru"}


def canonical_lang(lang: str) -> str:
    """The code of a language given by code or by name, in any case (`LANGUAGE_NAMES`);
    anything else unchanged, for `resolve_lang` to warn about.

    >>> canonical_lang("Russian"), canonical_lang("EN"), canonical_lang("xx")
    ('ru', 'en', 'xx')
    """
    if not isinstance(lang, str):
        return lang
    key = lang.strip().lower()
    if key in LANGS:
        return key
    return LANGUAGE_NAMES.get(key, lang)


def resolve_lang(lang: str | None) -> str:
    """`lang` (a code or a name, any case: `canonical_lang`) if it is one of LANGS;
    otherwise English, with a warning on stderr.

    >>> resolve_lang("Russian")
    'ru'
    """
    lang = canonical_lang(lang)
    if lang in LANGS:
        return lang
    choices = ", ".join(LANGS)
    print(f"pyasg: unknown language {lang!r}; choose one of {choices}; using {LANGS[0]}",
          file=sys.stderr)
    return LANGS[0]


#: The graph kinds a `GraphReady` names, as the graph combo shows them.
KIND_TEXT: dict[str, dict[str, str]] = {
    "forward": {"en": "forward", "ru": "прямой проход"},
    "gradient": {"en": "gradient", "ru": "градиент"},
    "fused": {"en": "fused", "ru": "после слияния"},
}


def kind_name(kind: str, lang: str = "en") -> str:
    """A graph kind as the combo shows it (`KIND_TEXT`; another kind as it is).

    >>> kind_name("gradient", "ru"), kind_name("forward", "en"), kind_name("odd", "ru")
    ('градиент', 'forward', 'odd')
    """
    entry = KIND_TEXT.get(kind)
    return kind if entry is None else entry[_lang(lang)]


def ui_text(key: str, lang: str = "en") -> str:
    """An interface label (`UI_TEXT`, or the heat map's and model lab's `LAB_TEXT`) in
    `lang` (English where `lang` is unknown).

    >>> ui_text("group_count", "ru").format(n=3)
    'операций: 3'
    >>> ui_text("lab", "ru")
    'Лаборатория модели'
    """
    table = UI_TEXT[key] if key in UI_TEXT else LAB_TEXT[key]
    return table[_lang(lang)]


def category_name(category: str, lang: str = "en") -> str:
    """The colour legend's name of an op category (`CATEGORY_TEXT`), in `lang`.

    >>> category_name("activation", "ru"), category_name("unheard-of", "ru")
    ('активация', 'unheard-of')
    """
    entry = CATEGORY_TEXT.get(category)
    return category if entry is None else entry[_lang(lang)]


def explain_op(op_name: str, lang: str = "en") -> dict[str, str]:
    """{"what", "formula", "why"} for a primitive op's `name`, in `lang`."""
    entry = OPS_TEXT.get(op_name, GENERIC_OP_TEXT)
    return dict(entry[_lang(lang)])


def guess_kind(path: str) -> str | None:
    """The layer parameter kind a dotted path suggests (PARAM_PATTERNS), or None."""
    for pattern, kind in PARAM_PATTERNS:
        if re.search(pattern, path):
            return kind
    return None


def recorded_kind(path: str, kinds: dict[str, str]) -> str | None:
    """The layer kind recorded (`pyasg.events.describe_params`) for input `path`.

    Recorded paths are relative to the layer that was initialised, and a graph's
    input paths carry the argument name and any containers in front, so the longest
    recorded path that `path` ends with (on dotted boundaries) wins. A one-word match
    (`weight`) says little, so a name that suggests a kind (`guess_kind`) beats it.

    >>> kinds = {"weight": "Linear.weight", "norm1.weight": "LayerNorm.weight"}
    >>> recorded_kind("params.blocks.0.norm1.weight", kinds)
    'LayerNorm.weight'
    >>> recorded_kind("params.fc.weight", kinds), recorded_kind("params.x", kinds)
    ('Linear.weight', None)
    """
    parts = path.split(".")
    for start in range(len(parts)):
        suffix = ".".join(parts[start:])
        if suffix in kinds:
            if start == len(parts) - 1 and guess_kind(path) is not None:
                return guess_kind(path)
            return kinds[suffix]
    return None


def explain_param(path: str, kind: str | None = None, lang: str = "en") -> str:
    """The role of the parameter at dotted `path`, from its layer `kind` or else its name."""
    lang = _lang(lang)
    if kind in PARAM_TEXT:
        text = PARAM_TEXT[kind][lang]
        parts = path.split(".")
        parent = parts[-2] if len(parts) >= 2 else ""
        if kind.startswith("Linear.") and parent in PARAM_CONTEXT:
            return f"{PARAM_TEXT[PARAM_CONTEXT[parent]][lang]} — {text}"
        return text
    guessed = guess_kind(path)
    if guessed is not None:
        return PARAM_TEXT[guessed][lang]
    return GENERIC_PARAM_TEXT[lang]


#: The heat map's and the model lab's labels (`pyasg.viewer.cost`, `pyasg.viewer.lab`).
LAB_TEXT: dict[str, dict[str, str]] = {
    "heat": {"en": "Colour by", "ru": "Цвет по"},
    "heat_category": {"en": "category", "ru": "категории"},
    "heat_time": {"en": "time", "ru": "времени"},
    "heat_memory": {"en": "memory", "ru": "памяти"},
    "heat_flops": {"en": "FLOPs", "ru": "FLOP"},
    "heat_legend": {"en": "Cost per step ({metric}):", "ru": "Затраты за шаг ({metric}):"},
    "heat_none": {"en": "no cost", "ru": "без затрат"},
    "heat_waiting": {"en": "no profile of this graph yet",
                     "ru": "для этого графа ещё нет профиля"},
    "cost": {"en": "Cost per step", "ru": "Затраты за шаг"},
    "cost_time": {"en": "Time", "ru": "Время"},
    "cost_of_step": {"en": "of the step", "ru": "шага"},
    "cost_flops": {"en": "FLOPs", "ru": "FLOP"},
    "cost_memory": {"en": "Memory", "ru": "Память"},
    "cost_ops": {"en": "Fused ops", "ru": "Слитые операции"},
    "cost_source": {"en": "Generated kernel", "ru": "Сгенерированное ядро"},
    "cost_none": {"en": "this node runs no kernel", "ru": "у этого узла нет ядра"},
    "lab": {"en": "Model lab", "ru": "Лаборатория модели"},
    "lab_waiting": {"en": "The training process offers no changes (train with "
                          "pyasg.train.lab.ModelLab).",
                    "ru": "Процесс обучения не предлагает изменений (обучайте с "
                          "pyasg.train.lab.ModelLab)."},
    "lab_change": {"en": "Change", "ru": "Изменение"},
    "lab_value": {"en": "New value", "ru": "Новое значение"},
    "lab_apply": {"en": "Apply at the next step", "ru": "Применить на следующем шаге"},
    "lab_history": {"en": "Changes", "ru": "Изменения"},
    "lab_sent": {"en": "sent: ", "ru": "отправлено: "},
    "lab_refused": {"en": "refused: ", "ru": "отклонено: "},
    "lab_bad_value": {"en": "bad value: ", "ru": "неверное значение: "},
    "lab_activation": {"en": "activation", "ru": "активация"},
    "lab_dropout": {"en": "dropout rate", "ru": "доля dropout"},
    "lab_insert_dropout": {"en": "insert Dropout after", "ru": "вставить Dropout после"},
    "lab_remove_dropout": {"en": "remove Dropout", "ru": "убрать Dropout"},
    "lab_insert_layernorm": {"en": "insert LayerNorm after", "ru": "вставить LayerNorm после"},
    "lab_lr": {"en": "learning rate", "ru": "скорость обучения"},
    "lab_marker": {"en": "model changed", "ru": "модель изменена"},
}


def lab_text(key: str, lang: str = "en") -> str:
    """A heat-map or model-lab label in `lang` (English where the language has none).

    >>> lab_text("lab", "ru")
    'Лаборатория модели'
    """
    return LAB_TEXT[key].get(_lang(lang), LAB_TEXT[key]["en"])


def param_heading(path: str, kind: str | None = None, lang: str = "en") -> str:
    """The inspector's heading of the parameter at `path`: its layer (the path without the
    argument's name and the parameter's own name) and the layer's kind (the recorded
    `kind`, else the one the name suggests).

    >>> param_heading("params.blocks.0.attn.w_q.weight", "Linear.weight")
    'Layer parameter: blocks.0.attn.w_q (Linear)'
    >>> param_heading("p.norm1.weight", None, "ru"), param_heading("p.odd", None)
    ('Параметр слоя: norm1 (LayerNorm)', 'Parameter: odd')
    """
    parts = path.split(".")
    layer = ".".join(parts[1:-1]) or parts[-1]
    kind = kind or guess_kind(path)
    if kind is None:
        return ui_text("param_heading_plain", lang).format(layer=layer)
    return ui_text("param_heading", lang).format(layer=layer, kind=kind.split(".")[0])
