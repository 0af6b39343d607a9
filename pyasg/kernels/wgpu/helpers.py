"""The WGSL helper functions a shader asks for by name: numpy's semantics where WGSL differs.

WGSL lacks some of numpy's functions or defines them differently (log1p, expm1, erf,
pow of a negative base, integer floor division and modulo, NaN tests the compiler may
not fold away), so they are written out here once. A generator asks its `Shader` for a
helper by name (`Shader.helper`), and the shader emits each one at most once.

>>> sorted(HELPERS)[:3]
['erf_f', 'expm1_f', 'floordiv_i']
>>> HELPERS["mod_f"].splitlines()[0]
'fn mod_f(a: f32, b: f32) -> f32 {'
"""

from __future__ import annotations

#: Helper name -> its WGSL function (which defines exactly that name).
HELPERS: dict[str, str] = {
    "log1p_f": """fn log1p_f(x: f32) -> f32 {
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * x / (u - 1.0);
}""",
    "expm1_f": """fn expm1_f(x: f32) -> f32 {
  if (abs(x) < 1e-5) { return x + 0.5 * x * x; }
  return exp(x) - 1.0;
}""",
    "erf_f": """fn erf_f(x: f32) -> f32 {
  // Numerical Recipes' erfc approximation (fractional error < 1.2e-7); WGSL has no erf
  // and Abramowitz & Stegun 7.1.26 (1.5e-7 absolute, worse relative) is too coarse.
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let y = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277)))))))));
  return sign(x) * (1.0 - y);
}""",
    "tanh_f": """fn tanh_f(x: f32) -> f32 {
  // some drivers overflow exp inside tanh for large |x|; tanh is +-1 there anyway.
  // clamp may turn NaN into a bound: NaN (tested on the bits) passes through
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  return tanh(clamp(x, -15.0, 15.0));
}""",
    "pow_f": """fn pow_f(a: f32, b: f32) -> f32 {
  // numpy's power: negative bases with integer exponents, 0**0 = nan**0 = 1**nan = 1,
  // else NaN in, NaN out (tested on the bits: the branches below would lose it)
  if (b == 0.0 || a == 1.0) { return 1.0; }
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  if (a == 0.0) { return select(bitcast<f32>(0x7f800000u), 0.0, b > 0.0); }
  if (a > 0.0) { return exp2(b * log2(a)); }
  if (b != floor(b)) { return bitcast<f32>(0x7fc00000u); }
  let m = exp2(b * log2(-a));
  return select(m, -m, (abs(b) % 2.0) == 1.0);
}""",
    "pow_i": """fn pow_i(a: i32, b: i32) -> i32 {
  // numpy refuses negative integer powers; here they truncate towards zero
  if (b < 0) {
    if (a == 1) { return 1; }
    if (a == -1) { return select(-1, 1, (b % 2) == 0); }
    return 0;
  }
  var r = 1; var base = a; var e = b;
  loop {
    if (e == 0) { break; }
    if ((e & 1) == 1) { r = r * base; }
    base = base * base; e = e >> 1u;
  }
  return r;
}""",
    "pow_u": """fn pow_u(a: u32, b: u32) -> u32 {
  var r = 1u; var base = a; var e = b;
  loop {
    if (e == 0u) { break; }
    if ((e & 1u) == 1u) { r = r * base; }
    base = base * base; e = e >> 1u;
  }
  return r;
}""",
    "floordiv_i": """fn floordiv_i(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let q = a / b;
  return select(q, q - 1, (a % b != 0) && ((a < 0) != (b < 0)));
}""",
    "mod_i": """fn mod_i(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  let r = a % b;
  return select(r, r + b, (r != 0) && ((r < 0) != (b < 0)));
}""",
    "mod_f": """fn mod_f(a: f32, b: f32) -> f32 {
  return a - b * floor(a / b);  // the sign of b, as numpy's remainder
}""",
    "max_f": """fn max_f(a: f32, b: f32) -> f32 {
  // numpy's maximum: a NaN operand wins (WGSL's max may return the other)
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  return max(a, b);
}""",
    "min_f": """fn min_f(a: f32, b: f32) -> f32 {
  // numpy's minimum: a NaN operand wins (WGSL's min may return the other)
  if ((bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u) { return a; }
  if ((bitcast<u32>(b) & 0x7fffffffu) > 0x7f800000u) { return b; }
  return min(a, b);
}""",
    "sign_f": """fn sign_f(x: f32) -> f32 {
  // numpy's sign: NaN stays NaN
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  return sign(x);
}""",
    "ordered_f": """fn ordered_f(a: f32, b: f32) -> bool {
  // neither is NaN, on the bits: a compiler may assume float comparisons
  // never see a NaN and fold `x != x` to false
  return (bitcast<u32>(a) & 0x7fffffffu) <= 0x7f800000u
      && (bitcast<u32>(b) & 0x7fffffffu) <= 0x7f800000u;
}""",
    "is_nan": """fn is_nan(x: f32) -> bool {
  // on the bits: WGSL lets compilers assume that float comparisons never see a NaN
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}""",
    "taps": """fn taps(start: i32, dil: i32, k: i32, size: i32) -> vec2<i32> {
  // [lo, hi): the kernel taps t with 0 <= start + t * dil < size (empty when lo >= hi);
  // integer ceilings of non-negative numerators only, so / truncation is a floor
  var lo = 0;
  if (start < 0) { lo = (dil - 1 - start) / dil; }
  var hi = 0;
  if (size > start) { hi = min(k, (size - start + dil - 1) / dil); }
  return vec2<i32>(lo, hi);
}""",
}
