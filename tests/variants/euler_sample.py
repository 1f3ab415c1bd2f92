"""Alternative implementations of notebook 16's `euler_sample` (algorithm B.2)."""
import torch

EXERCISE = "euler_sample"


def while_loop_image_shaped_t(model, x0, num_steps):
    # t of shape (B, 1, 1, 1), a while loop
    x, i, dt = x0, 0, 1.0 / num_steps
    while i < num_steps:
        t = torch.full((x.shape[0], 1, 1, 1), i * dt)
        x = x + dt * model(x, t)
        i += 1
    return x


def linspace_times(model, x0, num_steps):
    times = torch.linspace(0, 1, num_steps + 1)[:-1]
    x = x0.clone()
    for t in times:
        x += model(x, t.expand(x.shape[0])) / num_steps     # in place, but on a copy
    return x


def column_t_other_names(velocity_net, noise, T):
    sample = noise
    for step in range(T):
        t = sample.new_full((sample.shape[0], 1), step / T)
        sample = sample.add(velocity_net(sample, t), alpha=1 / T)
    return sample


CORRECT = [while_loop_image_shaped_t, linspace_times, column_t_other_names]


def euler_with(bug):
    def euler_sample(model, x0, num_steps):
        x, dt, B = x0, 1.0 / num_steps, x0.shape[0]
        steps = {"T+1": num_steps + 1, "T-1": num_steps - 1}.get(bug, num_steps)
        for i in range(steps):
            t = {"end": (i + 1) * dt, "step number": float(i), "backwards": 1 - i * dt}.get(bug, i * dt)
            tt = torch.full((B,), t)
            u = model(x) if bug == "no t" else model(x0 if bug == "at x0" else x, tt)
            if bug == "no dt":
                x = x + u
            elif bug == "in place":
                x += dt * u
            elif bug == "backwards":
                x = x - dt * u
            else:
                x = x + dt * u
        return x
    return euler_sample


WRONG = [
    (euler_with("no dt"), "multiply the velocity by the step size"),
    (euler_with("end"), "not at its end"),
    (euler_with("step number"), "not the step number i"),
    (euler_with("backwards"), "integrate forward in time"),
    (euler_with("T+1"), "it takes T + 1 steps"),
    (euler_with("T-1"), "it takes T − 1 steps"),
    (euler_with("in place"), "x0 was changed in place"),
    (euler_with("at x0"), "evaluate u at the current x"),
    (euler_with("no t"), "called without t"),
]
