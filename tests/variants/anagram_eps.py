"""anagram_eps (10): ε = (ε_1(x_t) + view⁻¹(ε_2(view(x_t))))/2, each ε with CFG."""
import torch

EXERCISE = "anagram_eps"


def anagram_eps_one_pass(model, cond1, cond2, uncond, scale, view):
    """All four estimates in one batched pass, as the course's engine does."""
    def eps_fn(x, t):
        n = x.shape[0]
        e = lambda c: c.expand(n, *c.shape[1:])   # noqa: E731
        xs = torch.cat([x, view.apply(x), x, view.apply(x)])
        eps, var = model(xs, t, torch.cat([e(cond1), e(cond2), e(uncond), e(uncond)]))
        c1, c2, u1, u2 = eps.chunk(4)
        g1, g2 = u1 + scale * (c1 - u1), u2 + scale * (c2 - u2)
        out = (g1 + view.invert(g2)) / 2
        if var is None:
            return out, None
        v1, v2 = var[:n], var[n:2 * n]
        return out, (v1 + view.invert(v2)) / 2
    return eps_fn


def anagram_eps_four_calls(model, cond1, cond2, uncond, scale, view):
    def guided(x, t, c):
        (ec, vc), (eu, _) = model(x, t, c), model(x, t, uncond)
        return eu + scale * (ec - eu), vc

    def eps_fn(x, t):
        flipped = view.apply(x)
        e2, v2 = guided(flipped, t, cond2)
        e1, v1 = guided(x, t, cond1)
        back_e, back_v = view.invert(e2), None if v2 is None else view.invert(v2)
        return 0.5 * (e1 + back_e), None if v1 is None else 0.5 * (v1 + back_v)
    return eps_fn


class AnagramEps:
    """A callable object instead of a closure; the guidance written as (1 − γ) ε_u + γ ε_c."""

    def __init__(self, model, cond1, cond2, uncond, scale, view):
        self.model, self.conds, self.uncond, self.scale, self.view = model, (cond1, cond2), uncond, scale, view

    def __call__(self, x, t):
        outs = []
        for c, image in zip(self.conds, (x, self.view.apply(x))):
            ec, vc = self.model(image, t, c)
            eu, _ = self.model(image, t, self.uncond)
            outs.append(((1 - self.scale) * eu + self.scale * ec, vc))
        (e1, v1), (e2, v2) = outs
        eps = torch.stack([e1, self.view.invert(e2)]).mean(0)
        return eps, None if v1 is None else torch.stack([v1, self.view.invert(v2)]).mean(0)


def anagram_eps_object(model, cond1, cond2, uncond, scale, view):
    return AnagramEps(model, cond1, cond2, uncond, scale, view)


def _anagram(combine, guided=True, variance=None):
    def anagram_eps(model, cond1, cond2, uncond, scale, view):
        def cfg(x, t, c):
            (ec, vc), (eu, _) = model(x, t, c), model(x, t, uncond)
            return (eu + scale * (ec - eu) if guided else ec), vc

        def eps_fn(x, t):
            (e1, v1), (e2, v2) = cfg(x, t, cond1), cfg(view.apply(x), t, cond2)
            var = None if v1 is None else (variance or combine)(view, v1, v2)
            return combine(view, e1, e2), var
        return eps_fn
    return anagram_eps


WRONG = [
    (_anagram(lambda v, e1, e2: (e1 + e2) / 2), "not mapped back"),
    (_anagram(lambda v, e1, e2: e1 + v.invert(e2)), "divide their sum by 2"),
    (_anagram(lambda v, e1, e2: (e1 + v.apply(e2)) / 2), "not view.apply"),
    (_anagram(lambda v, e1, e2: (e1 + v.invert(e2)) / 2, guided=False), "classifier-free guidance"),
    (_anagram(lambda v, e1, e2: (e1 + v.invert(e2)) / 2, variance=lambda v, v1, v2: v1), "average the variance"),
]
CORRECT = [anagram_eps_one_pass, anagram_eps_four_calls, anagram_eps_object]
