"""The inspector's texts: every op and every layer parameter kind, in English and Russian."""

import doctest
import re

import pytest

import pyasg
import pyasg.nn
from pyasg.asg.ops import OPS
from pyasg.viewer import texts
from pyasg.viewer.texts import (
    LANGS,
    OPS_TEXT,
    PARAM_PATTERNS,
    PARAM_TEXT,
    UI_TEXT,
    explain_op,
    explain_param,
    guess_kind,
    resolve_lang,
)

CYRILLIC = re.compile("[а-яёА-ЯЁ]")
OP_NAMES = sorted({cls.name for cls in OPS.values()})
FIELDS = ("what", "formula", "why")


def test_pyasg_imported():
    assert pyasg.asg.ops.OPS is OPS and len(OP_NAMES) >= 40


def test_langs():
    assert LANGS == ("en", "ru")


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_op_has_texts(name):
    assert name in OPS_TEXT, f"op {name!r} has no entry in pyasg.viewer.texts.OPS_TEXT"
    for lang in LANGS:
        entry = OPS_TEXT[name].get(lang)
        assert entry is not None, f"op {name!r} has no {lang} text"
        for field in FIELDS:
            assert entry.get(field, "").strip(), f"op {name!r}: {lang} {field!r} is empty"


def test_no_texts_for_unknown_ops():
    assert set(OPS_TEXT) <= set(OP_NAMES), set(OPS_TEXT) - set(OP_NAMES)


@pytest.mark.parametrize("kind", sorted(pyasg.nn.ROLES))
def test_every_param_kind_has_texts(kind):
    assert kind in PARAM_TEXT, f"kind {kind!r} has no entry in pyasg.viewer.texts.PARAM_TEXT"
    for lang in LANGS:
        assert PARAM_TEXT[kind].get(lang, "").strip(), f"kind {kind!r} has no {lang} text"


def _all_texts():
    for name, entry in OPS_TEXT.items():
        for lang in LANGS:
            for field in FIELDS:
                yield f"op {name} {field}", lang, field, entry[lang][field]
    for kind, entry in PARAM_TEXT.items():
        for lang in LANGS:
            yield f"param {kind}", lang, "role", entry[lang]
    for key, entry in UI_TEXT.items():
        for lang in LANGS:
            yield f"ui {key}", lang, "label", entry[lang]


def test_languages_are_what_they_say():
    for where, lang, field, text in _all_texts():
        if lang == "en":
            assert not CYRILLIC.search(text), f"{where}: Cyrillic in the English text {text!r}"
        elif field != "formula":  # a formula may be the same in both languages
            assert CYRILLIC.search(text), f"{where}: no Cyrillic in the Russian text {text!r}"


def test_explain_op():
    en = explain_op("matmul", "en")
    assert set(en) == set(FIELDS) and "x₁·x₂" in en["formula"]
    assert CYRILLIC.search(explain_op("conv2d", "ru")["what"])
    assert explain_op("sum", "xx") == explain_op("sum", "en")
    assert explain_op("no_such_op", "ru")["what"]  # a generic text, never a KeyError


@pytest.mark.parametrize("lang", LANGS)
def test_explain_param_examples(lang):
    gamma = explain_param("blocks.0.norm1.weight", "LayerNorm.weight", lang)
    assert "γ" in gamma
    assert "γ" in explain_param("blocks.0.norm1.weight", lang=lang)  # guessed from the name
    query = PARAM_TEXT["MultiHeadAttention.w_q"][lang]
    assert explain_param("attn.w_q.weight", lang=lang) == query
    # What the training stack records: a Linear inside attention; the context is kept.
    both = explain_param("blocks.0.attn.w_q.weight", "Linear.weight", lang)
    assert both.startswith(query) and PARAM_TEXT["Linear.weight"][lang] in both
    assert explain_param("conv1.weight", lang=lang) == PARAM_TEXT["Conv2d.weight"][lang]
    word = {"en": "query projection", "ru": "проекция запросов"}[lang]
    assert word in explain_param("attn.w_q.weight", lang=lang)
    word = {"en": "convolution kernel", "ru": "ядро свёртки"}[lang]
    assert word in explain_param("conv1.weight", lang=lang)


@pytest.mark.parametrize(("path", "kind"), [
    ("blocks.0.attn.w_k.weight", "MultiHeadAttention.w_k"),
    ("attn.w_v", "MultiHeadAttention.w_v"),
    ("attn.w_o.weight", "MultiHeadAttention.w_o"),
    ("bn1.weight", "BatchNorm.weight"),
    ("bn1.bias", "BatchNorm.bias"),
    ("layers.2.running_mean", "BatchNorm.running_mean"),
    ("running_var", "BatchNorm.running_var"),
    ("norm1.gamma", "LayerNorm.weight"),
    ("ln_f.bias", "LayerNorm.bias"),
    ("tok_embed.weight", "Embedding.weight"),
    ("token_embedding.weight", "Embedding.weight"),
    ("pos_embed.weight", "LearnedPositionalEmbedding.weight"),
    ("decoder.deconv1.weight", "ConvTranspose2d.weight"),
    ("features.conv2.weight", "Conv2d.weight"),
    ("ff.fc1.weight", "FeedForward.fc1"),
    ("head.bias", "Linear.bias"),
    ("classifier.weight", "Linear.weight"),
    ("mystery", None),
])
def test_guess_kind(path, kind):
    assert guess_kind(path) == kind


def test_patterns_name_known_kinds():
    for pattern, kind in PARAM_PATTERNS:
        re.compile(pattern)
        assert kind in PARAM_TEXT, kind


def test_explain_param_fallbacks():
    assert explain_param("mystery", lang="en") == texts.GENERIC_PARAM_TEXT["en"]
    assert CYRILLIC.search(explain_param("mystery", "Unknown.kind", "ru"))
    # A recorded kind wins over the name.
    assert explain_param("conv1.weight", "Linear.weight") == PARAM_TEXT["Linear.weight"]["en"]


def test_resolve_lang(capsys):
    assert resolve_lang("ru") == "ru" and resolve_lang("en") == "en"
    assert resolve_lang("Russian") == "ru" and resolve_lang(" ENGLISH ") == "en"
    assert resolve_lang("RU") == "ru"  # a script's --lang (charlm.py) takes names too
    assert capsys.readouterr().err == ""
    assert resolve_lang("de") == "en"
    err = capsys.readouterr().err
    assert "'de'" in err and "en" in err and "ru" in err


def test_ui_text_complete():
    for key in ("search", "loss", "inputs", "users", "source"):
        assert all(UI_TEXT[key][lang] for lang in LANGS)


def test_docstring_examples():
    # tests/test_docstrings.py skips pyasg.viewer (it may need a display); this module does not.
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    assert doctest.testmod(texts, optionflags=flags).failed == 0
