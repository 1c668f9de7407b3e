"""The adapter: the one door between any SNN and any attack.

``SNNAdapter(net, ...)`` maps images in [0, 1] with shape [N, C, H, W] to logits [N, K]:

1. resets every neuron's state (``spikingjelly.activation_based.functional.reset_net``) before *every*
   forward, so no state leaks between calls;
2. encodes the static image over T steps: ``direct`` (the image repeated T times) or ``poisson``
   (Bernoulli spikes with rate = pixel intensity, drawn from the adapter's own seeded generator,
   identity backward like spikingjelly's ``surrogate.PoissonPass``);
3. runs the network (multi-step ``[T, N, ...] -> [T, N, K]`` or single-step, one call per t);
4. averages the logits over time.

Construction swaps each spikingjelly IF/LIF/ParametricLIF node for an instrumented twin
(:mod:`bench.neurons`) so that an attacker can choose the backward rule (:meth:`SNNAdapter.backward_rule`)
and membrane potentials can be recorded (:meth:`SNNAdapter.recording`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from spikingjelly.activation_based import functional
from torch import nn

from attacks.backward_rules import BackwardRule, parse_rule
from bench.errors import BenchError
from bench.neurons import RecordMode, SpikingNeuron, instrument

ENCODERS = ("direct", "poisson", "phase")


class SNNAdapter(nn.Module):
    """Images in [0, 1] -> time-averaged logits, with state reset, encoding and a swappable backward rule.

    Args:
        net: a spiking network mapping ``[T, N, C, H, W]`` to ``[T, N, K]`` (``step_mode='m'``), or
            ``[N, C, H, W]`` to ``[N, K]`` per time step (``step_mode='s'``).
        time_steps: T.
        encoder: ``direct`` or ``poisson``.
        own_rule: the model's training surrogate (its "own SG"); by default each neuron keeps the rule
            equal to its spikingjelly surrogate.
        step_mode: ``m`` or ``s`` (how ``net`` consumes time).
        seed: seed of the generator of stochastic encoders.
    """

    def __init__(
        self,
        net: nn.Module,
        time_steps: int,
        encoder: str = "direct",
        own_rule: BackwardRule | str | None = None,
        step_mode: str = "m",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise BenchError(f"unknown encoder '{encoder}': use one of {', '.join(ENCODERS)}")
        if step_mode not in ("m", "s"):
            raise BenchError(f"step_mode must be 'm' or 's', got {step_mode!r}")
        if int(time_steps) < 1:
            raise BenchError(f"time_steps must be >= 1, got {time_steps}")
        self.net = net
        self.time_steps = int(time_steps)
        self.encoder = encoder
        self.step_mode = step_mode
        self.seed = int(seed)
        self.neurons: list[SpikingNeuron] = instrument(net, parse_rule(own_rule) if own_rule else None)
        if not self.neurons:
            raise BenchError("the network has no spiking neurons (IFNode/LIFNode/ParametricLIFNode): is it an SNN?")
        self.own_rule: BackwardRule = self.neurons[0].rule
        self._generator: torch.Generator | None = None
        self._stochastic_detected: bool | None = None
        #: the phase encoder (Luu's weighted phase coding, bench/phase_encoder.py) when encoder == "phase"
        self.input_encoder: nn.Module | None = None
        if encoder == "phase":
            from bench.phase_encoder import PhaseEncoder

            self.input_encoder = PhaseEncoder(self.time_steps)

    # -- forward -------------------------------------------------------------------------------
    def reseed(self, seed: int | None = None) -> None:
        """Restart the stochastic encoder's random stream (same seed, same draws)."""
        if seed is not None:
            self.seed = int(seed)
        self._generator = None

    def _rng(self, device: torch.device) -> torch.Generator:
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
        return self._generator

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] in [0, 1] -> [T, N, C, H, W] input sequence."""
        if self.encoder == "direct":
            return x.unsqueeze(0).expand(self.time_steps, *x.shape)
        if self.input_encoder is not None:
            return self.input_encoder(x)
        u = torch.rand((self.time_steps, *x.shape), generator=self._rng(x.device), device=x.device, dtype=x.dtype)
        spikes = (u < x.unsqueeze(0)).to(x.dtype)
        xs = x.unsqueeze(0).expand_as(spikes)
        return xs + (spikes - xs).detach()  # Bernoulli forward, identity backward (PoissonPass)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise BenchError(f"the adapter takes images [N, C, H, W], got shape {tuple(x.shape)}")
        functional.reset_net(self.net)
        seq = self.encode(x)
        if self.step_mode == "m":
            out = self.net(seq)
        else:
            out = torch.stack([self.net(seq[t]) for t in range(self.time_steps)])
        if out.dim() != 2 + 1 or out.shape[0] != self.time_steps or out.shape[1] != x.shape[0]:
            raise BenchError(
                f"the network must return logits [T={self.time_steps}, N={x.shape[0]}, K], got {tuple(out.shape)}"
            )
        return out.mean(0)

    # -- properties ----------------------------------------------------------------------------
    @property
    def declared_stochastic(self) -> bool:
        return self.encoder == "poisson"

    @torch.no_grad()
    def detect_stochastic(self, x: torch.Tensor, repeats: int = 5) -> bool:
        """True when ``repeats`` forwards of the same input differ (Poisson encoding, noisy neurons)."""
        was = self.training
        self.eval()
        try:
            ref = self(x)
            self._stochastic_detected = any(not torch.equal(ref, self(x)) for _ in range(repeats - 1))
        finally:
            self.train(was)
        return self._stochastic_detected

    @property
    def is_stochastic(self) -> bool:
        """Declared (stochastic encoder) or detected by :meth:`detect_stochastic`."""
        return self.declared_stochastic or bool(self._stochastic_detected)

    # -- attacker hooks ------------------------------------------------------------------------
    @contextmanager
    def backward_rule(self, rule: BackwardRule | str | dict | None) -> Iterator[BackwardRule]:
        """Use ``rule`` ("own" or None = the model's own SG) in every neuron; restore on exit."""
        resolved = self.own_rule if rule in (None, "own") else parse_rule(rule)  # type: ignore[arg-type]
        saved = [n.rule for n in self.neurons]
        resolved.begin_attack()
        for n in self.neurons:
            n.rule = resolved
        try:
            yield resolved
        finally:
            for n, r in zip(self.neurons, saved):
                n.rule = r

    @contextmanager
    def recording(self, mode: RecordMode = "detach") -> Iterator[dict[str, torch.Tensor]]:
        """Record ``H - theta`` of every neuron layer; on exit the dict maps layer name -> [T, N, ...].

        ``mode='graph'`` keeps the autograd graph (regularisers such as MPD-SGR need it).
        Only the last forward inside the block is kept (each forward resets the records).
        """
        names = {id(m): n for n, m in self.net.named_modules()}
        out: dict[str, torch.Tensor] = {}
        for n in self.neurons:
            n.start_recording(mode)
        try:
            yield out
        finally:
            for n in self.neurons:
                rec = n.stop_recording()
                if rec is not None:
                    out[names[id(n)]] = rec

    def state_snapshot(self) -> tuple[bool, list[str]]:
        """(training flag, each neuron's rule spec): attacks must leave this unchanged."""
        return self.training, [n.rule.spec() for n in self.neurons]
