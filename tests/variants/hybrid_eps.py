"""hybrid_eps (11): ε = lowpass(ε_1) + highpass(ε_2), each ε with CFG."""
import torch
from torchvision.transforms.functional import gaussian_blur

from course_utils.part_a.edits import highpass, lowpass

EXERCISE = "hybrid_eps"


def hybrid_eps_course_filters(model, cond_far, cond_near, uncond, scale, kernel_size=33, sigma=2.0):
    """The course's public lowpass/highpass, separate passes."""
    def cfg(x, t, c):
        (ec, vc), (eu, _) = model(x, t, c), model(x, t, uncond)
        return eu + scale * (ec - eu), vc

    def eps_fn(x, t):
        (e1, v1), (e2, v2) = cfg(x, t, cond_far), cfg(x, t, cond_near)
        eps = lowpass(e1, kernel_size, sigma) + highpass(e2, kernel_size, sigma)
        return eps, None if v1 is None else lowpass(v1, kernel_size, sigma) + highpass(v2, kernel_size, sigma)
    return eps_fn


def hybrid_eps_one_pass(model, cond_far, cond_near, uncond, scale, kernel_size=33, sigma=2.0):
    """One batched pass of 3 × batch (the empty prompt once: both share x_t)."""
    def blur(x):
        return gaussian_blur(x, kernel_size=[kernel_size, kernel_size], sigma=[sigma, sigma])

    def eps_fn(x, t):
        n = x.shape[0]
        conds = torch.cat([c.expand(n, *c.shape[1:]) for c in (cond_far, cond_near, uncond)])
        eps, var = model(torch.cat([x, x, x]), t, conds)
        far, near, u = eps.chunk(3)
        far, near = u + scale * (far - u), u + scale * (near - u)
        mix = blur(far) + (near - blur(near))
        if var is None:
            return mix, None
        v_far, v_near, _ = var.chunk(3)
        return mix, blur(v_far) + v_near - blur(v_near)
    return eps_fn


def hybrid_eps_difference(model, cond_far, cond_near, uncond, scale, kernel_size=33, sigma=2.0):
    """Written as ε_2 + lowpass(ε_1 − ε_2) (the blur is linear)."""
    def eps_fn(x, t):
        eu, _ = model(x, t, uncond)
        e1, v1 = model(x, t, cond_far)
        e2, v2 = model(x, t, cond_near)
        g1, g2 = eu + scale * (e1 - eu), eu + scale * (e2 - eu)
        low = gaussian_blur(g1 - g2, [kernel_size, kernel_size], [sigma, sigma])
        var = None if v1 is None else v2 + gaussian_blur(v1 - v2, [kernel_size, kernel_size], [sigma, sigma])
        return g2 + low, var
    return eps_fn


def _hybrid(combine, guided=True, variance=None):
    def hybrid_eps(model, cond_far, cond_near, uncond, scale, kernel_size=33, sigma=2.0):
        def cfg(x, t, c):
            (ec, vc), (eu, _) = model(x, t, c), model(x, t, uncond)
            return (eu + scale * (ec - eu) if guided else ec), vc

        def eps_fn(x, t):
            (e1, v1), (e2, v2) = cfg(x, t, cond_far), cfg(x, t, cond_near)
            var = None if v1 is None else (variance or combine)(v1, v2, kernel_size, sigma)
            return combine(e1, e2, kernel_size, sigma), var
        return eps_fn
    return hybrid_eps


_right = lambda e1, e2, k, s: lowpass(e1, k, s) + highpass(e2, k, s)   # noqa: E731
WRONG = [
    (_hybrid(lambda e1, e2, k, s: highpass(e1, k, s) + lowpass(e2, k, s)), "swapped"),
    (_hybrid(lambda e1, e2, k, s: lowpass(e1, k, s) + e2), "ε_2 − lowpass(ε_2)"),
    (_hybrid(lambda e1, e2, k, s: lowpass(e1) + highpass(e2)), "kernel_size and sigma are ignored"),
    (_hybrid(_right, guided=False), "classifier-free guidance"),
    (_hybrid(_right, variance=lambda v1, v2, k, s: v1), "combine the variances"),
]
CORRECT = [hybrid_eps_course_filters, hybrid_eps_one_pass, hybrid_eps_difference]
