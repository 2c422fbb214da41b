r"""A configured ``diffusers`` scheduler as an exact rule, read by calling its ``step``.

The loop a user writes,

.. code-block:: python

    x = randn(shape) * scheduler.init_noise_sigma
    for tau in scheduler.timesteps:
        m = model(scheduler.scale_model_input(x, tau), tau)
        x = scheduler.step(m, tau, x, generator=g).prev_sample

is, for the DDPM family (DDPM, DDIM with its eta, Euler, DPM-Solver multistep, ...), affine in
the start, the model outputs and the noise, with scalar coefficients. With an analytic prior
the model is the exact one: at the level :math:`\bar\alpha` of a call, an epsilon-prediction
is :math:`-\sqrt{1-\bar\alpha}\,s(x)`, a sample-prediction :math:`(x + (1-\bar\alpha)s)/\sqrt{\bar\alpha}`
and a v-prediction :math:`-\sqrt{(1-\bar\alpha)/\bar\alpha}\,(x + s)` (``config.prediction_type``).
:func:`read_scheduler` turns the loop into an :class:`~theory.samplers.AffineRule` or a
:class:`~theory.stages.StageRule` without any knowledge of the scheduler class:

* **float64**: the scheduler is deep-copied and every floating array it holds is cast to
  float64 (its own values: diffusers stores them in float32, so they are the float32-rounded
  numbers, now used exactly);
* **levels**: the noise level of call j and the scale of its samples come from the
  scheduler's own ``add_noise`` at that timestep: ``add_noise(1, 0) = s``, ``add_noise(0, 1) = sigma``
  give :math:`\bar\alpha = s^2/(s^2+\sigma^2)` and :math:`\kappa = \sqrt{s^2+\sigma^2}` (the sample
  is :math:`\kappa` times a variance-preserving one: 1 for DDPM/DDIM,
  :math:`\sqrt{1+\sigma^2}` for Euler); the rule's state is the variance-preserving sample
  :math:`Y = x/\kappa`, except that the start is ``init_noise_sigma`` times
  :math:`Y_T \sim N(0, I)`, as the loop draws it (for Euler with "linspace" spacing that is
  :math:`\sigma_{max}`, not :math:`\sqrt{1+\sigma_{max}^2}`: a start of variance
  :math:`\sigma^2_{max}/(1+\sigma^2_{max})`, kept exactly; ``init="qT"`` then means
  :math:`x_T` = ``init_noise_sigma`` times a draw of :math:`q_T`);
* **coefficients**: the whole loop is run on a batch of rows, one per exogenous input (the
  start and each call's model output) plus random verification rows of sizes 0.01, 1 and 100;
  a twin run with zero inputs and the same generator seed draws the same noise, so the
  difference is the noise-free response, read exactly and verified (:class:`~theory.probe.NotAffine`
  names the call where it fails: ``clip_sample=True`` and thresholding are refused this way);
* **history**: a multistep scheduler's output depends on earlier samples and model outputs;
  for each call the smallest window r of past samples and model outputs that reproduces the
  output exactly (least squares on the response, relative residual below 1e-10, or ``tol``
  where larger) is found, and the rule's state carries that window;
* **noise**: in the twin run the residual of each output is matched exactly to the standard
  normal draw regenerated from a copy of the generator (else refused);
* **end to end** (``verify=True``): the scheduler's own loop, driven by the exact
  epsilon-model of a 1-D bimodal prior, and the read rule (:func:`~theory.samplers.run_sampler`
  with the same generator) must agree draw for draw.

The rule's schedule has ``alpha_bar[t]`` = the level of the call at step t (t = N for the first
call) and ``alpha_bar[0] = 1``: the loop ends at the data (``end_alpha_bar = 1``, target
``"data"``); a loop ending at a noise level (e.g. DDIM with ``set_alpha_to_one=False``) is
described by ``end_alpha_bar`` < 1 and gets target ``"q1"`` at that level. The read rule then
gets every exact engine of the library: :func:`theory.exact_distance` gives TV, KL, Hellinger
and W2 with their error bounds.
"""
from __future__ import annotations

import copy
import inspect
import math

import numpy as np
import torch

from .checks import number, positive
from .priors import make_prior
from .probe import SCALES, NotAffine, check_response, fit_noise
from .samplers import AffineRule, AnalyticScore, run_sampler
from .schedules import Schedule
from .stages import StageRule, Tableau

__all__ = ["read_scheduler", "float64_scheduler", "model_coefficients"]

F64 = torch.float64
MAX_HISTORY = 4


def float64_scheduler(scheduler):
    """A deep copy of ``scheduler`` with every floating tensor or array it holds in float64."""
    sch = copy.deepcopy(scheduler)
    for key, val in list(vars(sch).items()):
        if torch.is_tensor(val) and val.is_floating_point():
            setattr(sch, key, val.to(F64))
        elif isinstance(val, np.ndarray) and np.issubdtype(val.dtype, np.floating):
            setattr(sch, key, val.astype(np.float64))
        elif isinstance(val, list) and val and all(torch.is_tensor(v) and v.is_floating_point()
                                                   for v in val):
            setattr(sch, key, [v.to(F64) for v in val])
    return sch


def model_coefficients(prediction_type: str, abar: float):
    """``(mu, nu)`` with model output = ``mu x + nu s(x)`` for the exact model at level abar."""
    om = 1.0 - abar
    if prediction_type == "epsilon":
        return 0.0, -math.sqrt(om)
    if prediction_type == "sample":
        return 1 / math.sqrt(abar), om / math.sqrt(abar)
    if prediction_type == "v_prediction":
        k = -math.sqrt(om / abar)
        return k, k
    raise ValueError(f"prediction_type {prediction_type!r} is not supported (epsilon, sample, "
                     "v_prediction)")


def _levels(sch):
    """Noise level and sample scale of every call, from the scheduler's own add_noise."""
    abar, kappa = [], []
    one, zero = torch.ones(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64)
    for j in range(len(sch.timesteps)):
        tau = sch.timesteps[j:j + 1]
        s = float(copy.deepcopy(sch).add_noise(one, zero, tau)[0, 0])
        sg = float(copy.deepcopy(sch).add_noise(zero, one, tau)[0, 0])
        if not (s > 0 and sg >= 0 and math.isfinite(s) and math.isfinite(sg)):
            raise ValueError(f"add_noise at timestep {float(tau[0]):g} gives scale {s} and noise "
                             f"{sg}: not a diffusion level")
        abar.append(s * s / (s * s + sg * sg))
        kappa.append(math.sqrt(s * s + sg * sg))
    return np.array(abar), np.array(kappa)


def _step_kwargs(sch, generator, extra):
    params = inspect.signature(sch.step).parameters
    kw = dict(extra)
    if "generator" in params:
        kw["generator"] = generator
    return kw


def _prev_sample(out):
    return out.prev_sample if hasattr(out, "prev_sample") else out[0]


def _probe_loop(sch0, E, seed, extra):
    """Run the loop on the rows of E = [start, model outputs...]; per call: the sample, the
    model input, the output and the generator state before the step."""
    sch = copy.deepcopy(sch0)
    g = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(E[:, :1], dtype=F64).clone()
    rec = []
    for j in range(len(sch.timesteps)):
        tau = sch.timesteps[j]
        state = g.get_state()
        xin = sch.scale_model_input(x, tau)
        m = torch.as_tensor(E[:, 1 + j:2 + j], dtype=F64).clone()
        out = _prev_sample(sch.step(m, tau, x, **_step_kwargs(sch, g, extra)))
        rec.append((x[:, 0].double().numpy().copy(), xin[:, 0].double().numpy().copy(),
                    out[:, 0].double().numpy().copy(), state))
        x = out.to(F64)
    return rec


def _solve(target, cands, tol):
    """Coefficients c with target = cands @ c exactly (relative residual <= min(tol, 1e-10)
    ... or ``tol`` where the scheduler computes in float32), or None."""
    if cands.shape[1] == 0:
        return np.zeros(0) if float(np.max(np.abs(target))) == 0 else None
    c, *_ = np.linalg.lstsq(cands, target, rcond=None)
    res = float(np.max(np.abs(target - cands @ c)))
    return c if res <= max(1e-10, tol) * (float(np.max(np.abs(target))) + 1e-300) else None


def _independent(cols):
    """Indices of the columns that are not in the span of the earlier ones (Gram-Schmidt in
    the order given): a canonical, unique representation when candidates are collinear (a
    multistep scheduler's sample is itself a combination of its past samples and outputs)."""
    keep, basis = [], []
    for i, c in enumerate(cols):
        v = c.astype(np.float64).copy()
        for b in basis:
            v -= (b @ v) * b
        if np.linalg.norm(v) > 1e-9 * (np.linalg.norm(c) + 1e-300):
            keep.append(i)
            basis.append(v / np.linalg.norm(v))
    return keep


def _unit(n, i):
    e = np.zeros(n)
    e[i] = 1.0
    return e


def _window(target, j, x_resp, nb, tol, with_mj):
    """Smallest history window reproducing ``target`` for call j: the kept candidates (kind,
    lag) and their coefficients. Candidates in priority order: x_j, [M_j], then M_{j-i} and
    x_{j-i} for i = 1..r."""
    for r in range(0, MAX_HISTORY + 1):
        cands = [("x", 0)] + ([("M", 0)] if with_mj else [])
        for i in range(1, r + 1):
            if j - i >= 0:
                cands += [("M", i), ("x", i)]
        cols = [x_resp[j - i][:nb] if kind == "x" else _unit(nb, 1 + j - i)
                for kind, i in cands]
        keep = _independent(cols)
        c = _solve(target, np.stack([cols[k] for k in keep], axis=1), tol)
        if c is not None:
            return [cands[k] for k in keep], c
    raise NotAffine(f"call {j}: not reproduced by the last {MAX_HISTORY} samples and model "
                    "outputs (a history longer than the window, or not affine)")


def _realise(j, out_resp, in_resp, x_resp, nb, tol):
    """The model input and the output of call j in terms of the current sample, past samples
    and model outputs (each with its own smallest window)."""
    return (_window(in_resp[j][:nb], j, x_resp, nb, tol, False),
            _window(out_resp[j][:nb], j, x_resp, nb, tol, True))


def read_scheduler(scheduler, *, end_alpha_bar: float = 1.0, step_kwargs=None,
                   name: str = None, tol: float = 1e-9, verify: bool = True, seed: int = 0):
    r"""The exact rule of a configured ``diffusers`` scheduler (module docstring).

    Parameters
    ----------
    scheduler
        A diffusers scheduler after ``set_timesteps``; it is copied, not changed.
    end_alpha_bar : float
        Noise level where the loop ends (1: the data, the default).
    step_kwargs : dict, optional
        Extra arguments of ``step`` (e.g. ``{"eta": 1.0}`` for DDIM).
    name : str, optional
        Name of the rule (default ``diffusers:<class name>``).
    tol : float
        Relative tolerance of the affine checks (schedulers that compute in float32 need
        about 1e-5).
    verify : bool
        Run the end-to-end draw-for-draw check.

    Returns
    -------
    AffineRule (one call per step, no history) or StageRule.
    """
    tol = positive("tol", tol)
    end_alpha_bar = number("end_alpha_bar", end_alpha_bar, lo=0, hi=1)
    extra = dict(step_kwargs or {})
    sch = float64_scheduler(scheduler)
    cls = type(scheduler).__name__
    name = name or f"diffusers:{cls}"
    N = len(sch.timesteps)
    if N < 1:
        raise ValueError("the scheduler has no timesteps: call set_timesteps first")
    ptype = getattr(getattr(sch, "config", None), "prediction_type", "epsilon")
    abar, kappa = _levels(sch)
    if np.any(np.diff(abar) <= 0) or abar[-1] >= end_alpha_bar or end_alpha_bar <= 0:
        raise ValueError("the scheduler's noise levels must increase strictly along its "
                         f"timesteps and stay below end_alpha_bar = {end_alpha_bar:g}")
    # the loop starts from x = init_noise_sigma * N(0, I): the first sample's scale is that,
    # which may differ slightly from the first level's kappa (Euler with "linspace" spacing
    # starts from sigma_max, not sqrt(sigma_max^2 + 1)): the rule reproduces the loop exactly
    init_sigma = float(getattr(sch, "init_noise_sigma", 1.0))
    if not (init_sigma > 0 and math.isfinite(init_sigma)):
        raise ValueError(f"init_noise_sigma = {init_sigma} is not a positive number")
    kappa_in = kappa.copy()
    kappa_in[0] = init_sigma
    nb = N + 1
    ver = np.concatenate([s * np.random.default_rng(seed).standard_normal((2, nb))
                          for s in SCALES])
    E = np.concatenate([np.eye(nb), ver])
    rec_a = _probe_loop(sch, E, seed + 1, extra)
    rec_b = _probe_loop(sch, np.zeros_like(E), seed + 1, extra)
    x_resp = [a[0] - b[0] for a, b in zip(rec_a, rec_b)]
    in_resp = [a[1] - b[1] for a, b in zip(rec_a, rec_b)]
    out_resp = [a[2] - b[2] for a, b in zip(rec_a, rec_b)]
    for j in range(N):
        where = f"call {j} (timestep {float(sch.timesteps[j]):g})"
        check_response(name, where + " (the model input)", in_resp[j][:nb], in_resp[j][nb:],
                       ver, tol)
        check_response(name, where + " (the output)", out_resp[j][:nb], out_resp[j][nb:], ver,
                       tol)
    calls = [_realise(j, out_resp, in_resp, x_resp, nb, tol) for j in range(N)]
    r_max = max([i for (cin, cout) in calls for kind, i in cin[0] + cout[0]] + [0])
    m = 1 + 2 * r_max
    kappa_out = np.append(kappa[1:], 1.0)
    tabs = []

    def col(kind, i):           # state: [Y = x_j / kappa_j, x_{j-1}..x_{j-r}, M_{j-1}..M_{j-r}]
        return i if kind == "x" else r_max + i

    for j, ((in_keys, cin), (out_keys, cout)) in enumerate(calls):
        # noise of call j: the twin run's residual against the regenerated draw
        def value_b(keys, coef):
            return sum(coef[k] * rec_b[j - i][0] for k, (kind, i) in enumerate(keys)
                       if kind == "x")
        g = torch.Generator()
        g.set_state(rec_b[j][3])
        z = torch.randn((E.shape[0], 1), generator=g, dtype=F64)[:, 0].numpy()
        c_j = fit_noise(name, f"call {j}", rec_b[j][2] - value_b(out_keys, cout), z[:, None],
                        tol, 1 + np.abs(rec_b[j][2]).max())[0]
        in_b = rec_b[j][1] - value_b(in_keys, cin)
        if float(np.max(np.abs(in_b))) > max(1e-10, tol) * (1 + float(np.max(np.abs(rec_b[j][1])))):
            raise ValueError(f"{name}: noise enters the model input of call {j} other than "
                             "through the sample")
        mu, nu = model_coefficients(ptype, abar[j])

        def row(keys, coef):
            v, cm = np.zeros(m), 0.0
            for k, (kind, i) in enumerate(keys):
                if kind == "M" and i == 0:
                    cm = coef[k]
                elif kind == "x" and i == 0:
                    v[0] += coef[k] * kappa_in[j]
                else:
                    v[col(kind, i)] += coef[k]
            return v, cm

        P, _ = row(in_keys, cin)
        a0, cM = row(out_keys, cout)
        A = np.zeros((m, m))
        B = np.zeros((m, 1))
        A[0] = (a0 + cM * mu * P) / kappa_out[j]
        B[0, 0] = cM * nu / kappa_out[j]
        if r_max:
            A[1, 0] = kappa_in[j]                           # x_j moves into the history
            for i in range(2, r_max + 1):
                A[i, i - 1] = 1.0
            A[r_max + 1] = mu * P                           # M_j = mu X_in + nu S
            B[r_max + 1, 0] = nu
            for i in range(2, r_max + 1):
                A[r_max + i, r_max + i - 1] = 1.0
        tabs.append(Tableau([abar[j]], P[None, :], [[0.0]], A, B, abs(c_j) / kappa_out[j]))
    schedule, shift = _schedule(abar, end_alpha_bar, cls, sch)
    T = schedule.T
    target = "data" if end_alpha_bar == 1 else "q1"
    affine = r_max == 0 and all(abs(t.P[0, 0] - 1) <= 1e-12 for t in tabs)
    if affine:
        a, b, c = np.zeros(T + 1), np.zeros(T + 1), np.zeros(T + 1)
        for j, tab in enumerate(tabs):
            t = N - j + shift
            a[t], b[t], c[t] = tab.A[0, 0], tab.B[0, 0], tab.c
        rule = AffineRule(name, a, b, c, schedule, target=target)
    else:
        full = [None] * (T + 1)
        for j, tab in enumerate(tabs):
            full[N - j + shift] = tab
        rule = StageRule(name, tuple(full), schedule, target,
                         info={"read_from": cls, "history_window": r_max})
    if verify:
        _end_to_end(sch, rule, ptype, abar, extra, seed, tol)
    return rule


def _schedule(abar, end, cls, sch):
    """Schedule with alpha_bar[t] = level of the call at step t and alpha_bar[0] = 1."""
    levels = [1.0] + ([end] if end < 1 else []) + list(abar[::-1])
    la = np.log(np.array(levels))
    beta = -np.expm1(la[1:] - la[:-1])
    ts = [float(t) for t in sch.timesteps]
    return Schedule(beta, name=f"diffusers:{cls}",
                    params={"timesteps": ts, "end_alpha_bar": end}), (1 if end < 1 else 0)


def _end_to_end(sch, rule, ptype, abar, extra, seed, tol, n=512):
    """The scheduler's loop with the exact model of a 1-D bimodal prior against the read rule,
    from the same generator (draw for draw)."""
    prior = make_prior("bimodal", 1)
    score = AnalyticScore(prior, rule.schedule)
    loop = copy.deepcopy(sch)
    g = torch.Generator().manual_seed(seed + 2)
    x = torch.randn(n, 1, generator=g, dtype=F64) * float(getattr(loop, "init_noise_sigma", 1.0))
    for j in range(len(loop.timesteps)):
        tau = loop.timesteps[j]
        xin = loop.scale_model_input(x, tau)
        mu, nu = model_coefficients(ptype, abar[j])
        m = mu * xin + nu * score.at_alpha_bar(xin, float(abar[j]))
        x = _prev_sample(loop.step(m, tau, x, **_step_kwargs(loop, g, extra))).to(F64)
    ours = run_sampler(rule, score, n, 1, generator=torch.Generator().manual_seed(seed + 2))
    dev = float((x - ours).abs().max() / (1 + x.abs().max()))
    if not math.isfinite(dev) or dev > max(1e-8, 100 * tol):
        raise NotAffine(f"{rule.name}: the scheduler's own loop and the read rule disagree on "
                        f"the exact model of a 1-D prior (relative deviation {dev:.3g})")
