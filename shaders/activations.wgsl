// The GLU activations the official code accepts (metala/utils.py
// get_activation_fn). The host picks one by defining
// `fn glu_act(x: f32) -> f32 { return act_<name>(x); }`. Needs math.wgsl.

fn act_silu(x: f32) -> f32 { return silu(x); }
// torch's default gelu is the exact (erf) form
fn act_gelu(x: f32) -> f32 { return 0.5 * x * (1.0 + erf_f(x * 0.70710678118654752)); }
fn act_relu(x: f32) -> f32 { return max(x, 0.0); }
fn act_elu(x: f32) -> f32 { return select(expm1_f(min(x, 0.0)), x, x > 0.0); }
fn act_sigmoid(x: f32) -> f32 { return sigmoid(x); }
// torch leaky_relu default slope
fn act_leak(x: f32) -> f32 { return select(0.01 * x, x, x > 0.0); }
fn act_1_elu(x: f32) -> f32 { return 1.0 + act_elu(x); }
fn act_2_elu(x: f32) -> f32 { return 2.0 + act_elu(x); }
fn act_sine(x: f32) -> f32 { return sin(x); }
