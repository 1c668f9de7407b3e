"""The adapter: the one door between any SNN and any attack.

``SNNAdapter(net, ...)`` maps images in [0, 1] with shape [N, C, H, W] to logits [N, K]:

1. resets every neuron's state (``spikingjelly.activation_based.functional.reset_net``) before *every*
   forward, so no state leaks between calls;
2. encodes the static image over T steps: ``direct`` (the image repeated T times) or ``poisson``
   (Bernoulli spikes with rate = pixel intensity, drawn from the adapter's own seeded generator,
   identity backward like spikingjelly's ``surrogate.PoissonPass``);
3. runs the network (multi-step ``[T, N, ...] -> [T, N, K]`` or single-step, one call per t);
4. averages the logits over time.

Two input contracts (``io_contract``):

* ``time-major``: ``net`` maps ``[T, N, C, H, W]`` to ``[T, N, K]`` (``step_mode='m'``), or ``[N, C, H, W]``
  to ``[N, K]`` per time step (``step_mode='s'``); the adapter does steps 2-4;
* ``image``: ``net`` owns its time loop and its encoding, as most published spikingjelly code does
  (spikingjelly 2.0's ``conv_fashion_mnist`` tutorial CSNN: ``forward(x)`` repeats ``x`` T times, runs a
  multi-step body and returns the firing rate averaged over T): it maps ``[N, C, H, W]`` to ``[N, K]`` and
  the adapter only resets it before each forward (step 1).

``io_contract=None`` detects the contract on the first forward (time-major first, then image);
:meth:`SNNAdapter.check_contract` checks it on a probe: output shape, one T-step simulation per forward
(every neuron layer advanced by exactly T steps, so state was reset between forwards) and the same
logits for the same input before and after another one.

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
IO_CONTRACTS = ("time-major", "image")
_HOW_TO_DECLARE = (
    'declare io_contract = "time-major" (forward maps [T, N, C, H, W] to [T, N, K]; the adapter encodes and '
    'averages over T) or "image" (forward maps [N, C, H, W] to [N, K] and owns its time loop and encoding) in the '
    "card (io_contract= in bench.benchmark)"
)


class SNNAdapter(nn.Module):
    """Images in [0, 1] -> time-averaged logits, with state reset, encoding and a swappable backward rule.

    Args:
        net: a spiking network mapping ``[T, N, C, H, W]`` to ``[T, N, K]`` (``step_mode='m'``), or
            ``[N, C, H, W]`` to ``[N, K]`` per time step (``step_mode='s'``).
        time_steps: T; None only for an image-contract model, whose T is then read off its own loop by
            :meth:`check_contract` (the number of steps its neurons run per forward).
        encoder: ``direct`` or ``poisson``.
        own_rule: the model's training surrogate (its "own SG"); by default each neuron keeps the rule
            equal to its spikingjelly surrogate.
        step_mode: ``m`` or ``s`` (how a time-major ``net`` consumes time).
        seed: seed of the generator of stochastic encoders.
        io_contract: ``time-major``, ``image`` (``net`` owns its time loop and encoding: ``[N, C, H, W] ->
            [N, K]``) or None (detected on the first forward, see :meth:`check_contract`).
    """

    def __init__(
        self,
        net: nn.Module,
        time_steps: int | None,
        encoder: str = "direct",
        own_rule: BackwardRule | str | None = None,
        step_mode: str = "m",
        seed: int = 0,
        io_contract: str | None = None,
    ) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise BenchError(f"unknown encoder '{encoder}': use one of {', '.join(ENCODERS)}")
        if step_mode not in ("m", "s"):
            raise BenchError(f"step_mode must be 'm' or 's', got {step_mode!r}")
        if time_steps is not None and int(time_steps) < 1:
            raise BenchError(f"time_steps must be >= 1, got {time_steps}")
        if io_contract is not None and io_contract not in IO_CONTRACTS:
            raise BenchError(f"io_contract must be one of {', '.join(IO_CONTRACTS)} (or absent: detected), got {io_contract!r}")
        if time_steps is None and io_contract == "time-major":
            raise BenchError("time_steps is required for a time-major model (the adapter encodes the image over T steps)")
        self.io_contract: str | None = io_contract
        self.contract_declared = io_contract is not None
        self.net = net
        self.time_steps: int | None = None if time_steps is None else int(time_steps)
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
        if self.time_steps is None:
            raise BenchError("time_steps is unknown: pass T to the adapter to encode images over time")
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
        if self.io_contract is None:
            return self._detect(x)
        out = self._run(x, self.io_contract)
        problem = self._shape_problem(out, x, self.io_contract)
        if problem:
            raise self._mismatch(x, f"{self.io_contract}: {problem}")
        return out if self.io_contract == "image" else out.mean(0)

    def _run(self, x: torch.Tensor, contract: str) -> torch.Tensor:
        if contract == "image":
            return self.net(x)
        seq = self.encode(x)
        if self.step_mode == "m":
            return self.net(seq)
        return torch.stack([self.net(seq[t]) for t in range(self.time_steps)])

    def _shape_problem(self, out: object, x: torch.Tensor, contract: str) -> str | None:
        """None when ``out`` has the contract's shape, else what was seen."""
        if not isinstance(out, torch.Tensor):
            return f"returned {type(out).__name__}, not a tensor"
        n = x.shape[0]
        if contract == "image":
            ok = out.dim() == 2 and out.shape[0] == n
            want = f"[N={n}, K]"
        else:
            ok = out.dim() == 3 and out.shape[0] == self.time_steps and out.shape[1] == n
            want = f"[T={self.time_steps}, N={n}, K]"
        return None if ok else f"returned {tuple(out.shape)}, expected {want}"

    def _mismatch(self, x: torch.Tensor, seen: str) -> BenchError:
        n, rest = x.shape[0], ", ".join(str(d) for d in x.shape[1:])
        return BenchError(
            f"the network fits {'neither input contract' if self.io_contract is None else 'the declared ' + self.io_contract + ' contract'} "
            f"({seen}); the contracts: time-major "
            f"[T={self.time_steps}, N={n}, {rest}] -> [T, N, K], image [N={n}, {rest}] -> [N, K]: {_HOW_TO_DECLARE}"
        )

    def _detect(self, x: torch.Tensor) -> torch.Tensor:
        """First forward with no declared contract: try time-major, then image; keep the first that fits."""
        seen: list[str] = []
        for contract in IO_CONTRACTS if self.time_steps is not None else ("image",):
            functional.reset_net(self.net)
            try:
                out = self._run(x, contract)
            except BenchError:
                raise
            except Exception as e:  # the model's own code: a wrong contract usually fails with a shape error
                first = (str(e).strip().splitlines() or [""])[0][:160]
                seen.append(f"{contract}: {type(e).__name__}: {first}")
                continue
            problem = self._shape_problem(out, x, contract)
            if problem:
                seen.append(f"{contract}: {problem}")
                continue
            self.io_contract = contract
            return out if contract == "image" else out.mean(0)
        raise self._mismatch(x, "; ".join(seen))

    @torch.no_grad()
    def state_diff(self, x: torch.Tensor, other: torch.Tensor) -> float:
        """Max |logit difference| of ``x`` before and after ``other``, every random stream reseeded
        (0 when no state carries over between forwards)."""

        def seeded(inp: torch.Tensor) -> torch.Tensor:
            torch.manual_seed(1234)
            self.reseed()
            return self(inp)

        was = self.training
        self.eval()
        try:
            a = seeded(x)
            seeded(other)
            b = seeded(x)
        finally:
            self.train(was)
            self.reseed()
        return float((a - b).abs().max())

    @torch.no_grad()
    def check_contract(self, x: torch.Tensor, leak: bool = True) -> str:
        """Check (and, when undeclared, detect) the input contract on a probe ``x`` of >= 2 images; return it.

        Raises one-line :class:`BenchError` s when the output shape fits neither contract, when one forward
        does not advance every neuron layer by exactly T steps (a model that owns its time loop declared
        time-major and single-step runs T x T steps without a reset; an image model whose internal T is not
        the declared one), or, with ``leak``, when the same input gives different logits after another one
        (a state leak, also sanity flag 6).
        """
        if len(x) < 2:
            raise BenchError("check_contract needs a probe of at least 2 images")
        was = self.training
        self.eval()
        try:
            try:
                self(x)
            except BenchError:
                raise
            except Exception as e:
                first = (str(e).strip().splitlines() or [""])[0][:160]
                raise self._mismatch(x, f"{self.io_contract}: {type(e).__name__}: {first}") from None
            steps = sorted({int(n.t) for n in self.neurons if int(n.t) > 0})
        finally:
            self.train(was)
        if self.time_steps is None and len(steps) == 1:  # an image model's T, read off its own loop
            self.time_steps = steps[0]
        if steps != [self.time_steps]:
            hint = (
                'the model owns its time loop: declare io_contract = "image"'
                if self.io_contract == "time-major" and steps and steps[-1] > self.time_steps
                else f"set time_steps to the number of steps the model runs ({steps[-1] if steps else '?'})"
            )
            raise BenchError(
                f"one forward ({self.io_contract} contract, T = {self.time_steps}) advanced the neuron layers by "
                f"{steps or [0]} steps, expected exactly {self.time_steps}: {hint}"
            )
        half = len(x) // 2
        diff = self.state_diff(x[:half], x[half : 2 * half].flip(0)) if leak else 0.0
        if diff != 0.0:
            raise BenchError(
                f"state leak: the same input gave logits differing by {diff:.3g} after another input (every random "
                "stream reseeded): state carries over between forwards; keep per-forward state in spikingjelly "
                "memories (reset by functional.reset_net) or reset it at the start of forward()"
            )
        return str(self.io_contract)

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
