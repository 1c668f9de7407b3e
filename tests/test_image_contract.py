"""A spikingjelly model as its authors write it: it owns its time loop (``[N, C, H, W] -> [N, K]``).

The module below has the shape of spikingjelly 2.0's ``conv_fashion_mnist`` tutorial CSNN (written here
from spikingjelly's documented API: ``layer.*`` and ``neuron.IFNode(surrogate_function=surrogate.ATan())``,
``functional.set_step_mode(self, "m")``, ``forward`` repeats the image T times and returns the firing rate
averaged over T), sized for the 8x8 ``digits`` data set and trained for 300 steps in the fixture. The
adapter must detect its contract, instrument its neurons, record its potentials, swap its backward rule,
and evaluate it to exactly the numbers of a time-major wrapper of the same weights.
"""

from __future__ import annotations

import copy
import textwrap
import tomllib

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from torch import nn

from bench.adapter import SNNAdapter
from bench.errors import BenchError
from bench.neurons import SpikingNeuron

T = 4


class CSNN(nn.Module):
    """The tutorial's CSNN shape: conv-BN-IF-pool x2, then FC-IF-FC-IF; forward owns the time loop."""

    def __init__(self, T: int = T, channels: int = 8) -> None:
        super().__init__()
        self.T = T
        self.conv_fc = nn.Sequential(
            layer.Conv2d(1, channels, kernel_size=3, padding=1, bias=False),
            layer.BatchNorm2d(channels),
            neuron.IFNode(surrogate_function=surrogate.ATan()),
            layer.MaxPool2d(2, 2),  # 4 x 4
            layer.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            layer.BatchNorm2d(channels),
            neuron.IFNode(surrogate_function=surrogate.ATan()),
            layer.MaxPool2d(2, 2),  # 2 x 2
            layer.Flatten(),
            layer.Linear(channels * 2 * 2, 32, bias=False),
            neuron.IFNode(surrogate_function=surrogate.ATan()),
            layer.Linear(32, 10, bias=False),
            neuron.IFNode(surrogate_function=surrogate.ATan()),
        )
        functional.set_step_mode(self, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)  # [N, C, H, W] -> [T, N, C, H, W]
        return self.conv_fc(x_seq).mean(0)  # firing rate [N, K]


class TimeMajor(nn.Module):
    """The same body as a time-major network: [T, N, C, H, W] -> [T, N, K] (the adapter encodes and averages)."""

    def __init__(self, csnn: CSNN) -> None:
        super().__init__()
        self.conv_fc = csnn.conv_fc

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.conv_fc(x_seq)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small convolutions on a shared CPU: one thread is many times faster than two fighting for cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(one_thread) -> CSNN:
    """The tutorial recipe (Adam, MSE between firing rate and one-hot label, reset after each batch), 300 steps."""
    from bench.data import load_dataset

    torch.manual_seed(0)
    train = load_dataset("digits").train
    net = CSNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(300):
        idx = torch.randint(0, len(train), (64,), generator=gen)
        loss = F.mse_loss(net(train.x[idx]), F.one_hot(train.y[idx], 10).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        functional.reset_net(net)
    return net.eval()


def test_trained_model_learned(trained, digits_data):
    with torch.no_grad():
        acc = float((trained(digits_data.test.x).argmax(1) == digits_data.test.y).float().mean())
        functional.reset_net(trained)
    assert acc > 0.6


def test_contract_is_detected_and_checked(trained, digits_data):
    x = digits_data.test.x[:16]
    with torch.no_grad():
        direct = trained(x)
        functional.reset_net(trained)
    adapter = SNNAdapter(copy.deepcopy(trained), T).eval()
    assert adapter.io_contract is None and adapter.check_contract(x) == "image"
    assert len(adapter.neurons) == 4 and all(isinstance(n, SpikingNeuron) for n in adapter.neurons)
    with torch.no_grad():
        assert torch.equal(adapter(x), direct)  # the instrumented twins' forward is spikingjelly's
        assert torch.equal(adapter(x), direct)  # reset between forwards: the same logits twice
    # T read off the model's own loop when not given
    inferred = SNNAdapter(copy.deepcopy(trained), None)
    assert inferred.check_contract(x) == "image" and inferred.time_steps == T


def test_contract_mismatch_is_one_line_naming_shapes_and_both_contracts(trained, digits_data):
    x = digits_data.test.x[:16]
    with pytest.raises(BenchError) as e:
        SNNAdapter(copy.deepcopy(trained), T, io_contract="time-major").check_contract(x)
    msg = str(e.value)
    assert "\n" not in msg and "declared time-major contract" in msg
    assert "[T=4, N=16, 1, 8, 8] -> [T, N, K]" in msg and "image [N=16, 1, 8, 8] -> [N, K]" in msg
    assert 'io_contract = "time-major"' in msg and '"image"' in msg
    # declared single-step time-major: 4 calls of a model that runs 4 steps itself = a 16-step simulation
    with pytest.raises(BenchError, match=r"advanced the neuron layers by \[16\] steps, expected exactly 4.*io_contract = \"image\""):
        SNNAdapter(copy.deepcopy(trained), T, io_contract="time-major", step_mode="s").check_contract(x)
    with pytest.raises(BenchError, match=r"T = 3\) advanced the neuron layers by \[4\] steps.*\(4\)"):
        SNNAdapter(copy.deepcopy(trained), 3).check_contract(x)

    class Wrong(nn.Module):  # fits neither contract
        def __init__(self) -> None:
            super().__init__()
            self.n = neuron.IFNode(step_mode="m")

        def forward(self, x):
            return self.n(x).flatten()

    with pytest.raises(BenchError, match=r"fits neither input contract \(time-major: returned \(4096,\), expected \[T=4, N=16, K\]; image: returned \(1024,\)"):
        SNNAdapter(Wrong(), T).check_contract(x)


def test_leak_in_a_model_that_owns_its_loop_is_caught(trained, digits_data):
    class Leaky(CSNN):
        def forward(self, x):
            self.calls = getattr(self, "calls", 0) + 1  # a plain attribute: reset_net does not reset it
            return super().forward(x) + 0.01 * self.calls

    leaky = Leaky()
    leaky.load_state_dict(trained.state_dict())
    with pytest.raises(BenchError, match="state leak.*state carries over between forwards"):
        SNNAdapter(leaky.eval(), T).check_contract(digits_data.test.x[:16])


def test_recording_and_backward_rule_swap_work_inside_the_models_loop(trained, digits_data):
    adapter = SNNAdapter(copy.deepcopy(trained), T).eval()
    x = digits_data.test.x[:8]
    with adapter.recording() as rec:
        adapter(x)
    assert len(rec) == 4 and all(v.shape[0] == T and v.shape[1] == 8 for v in rec.values())
    assert adapter.own_rule.spec() == "atan:alpha=2"  # spikingjelly's ATan() default, read off the neurons

    def grad(rule):
        xx = x.clone().requires_grad_(True)
        with adapter.backward_rule(rule):
            F.cross_entropy(adapter(xx), digits_data.test.y[:8]).backward()
        return xx.grad

    own, rect = grad("own"), grad("rectangle:gamma=1")
    assert own.abs().sum() > 0 and not torch.allclose(own, rect)
    assert [n.rule.spec() for n in adapter.neurons] == ["atan:alpha=2"] * 4  # restored
    assert torch.equal(grad("atan:alpha=2"), own)


def test_image_model_evaluates_to_the_numbers_of_its_time_major_twin(trained, isolated_outputs):
    """Clean accuracy, own-SG PGD and every attack of `quick` agree exactly (same weights, same arithmetic)."""
    from bench.api import benchmark

    kw = dict(dataset="digits", preset="quick", eps=0.1, time_steps=T, limit=40, device="cpu")
    img = benchmark(trained, io_contract=None, **kw)
    tm = benchmark(TimeMajor(copy.deepcopy(trained)), io_contract="time-major", **kw)
    assert img.io_contract == "image" and tm.io_contract == "time-major"
    assert img.clean_acc == tm.clean_acc and img.clean_acc > 50
    assert img.own_sg_robust_acc == tm.own_sg_robust_acc and img.robust_acc == tm.robust_acc
    assert img.per_attack["n_broken"].tolist() == tm.per_attack["n_broken"].tolist()
    assert img.per_attack["n_broken"].sum() > 0  # the attacks did something
    assert img.points.equals(tm.points)


MODEL_FILE = textwrap.dedent(
    """
    import torch
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from torch import nn


    class CSNN(nn.Module):
        def __init__(self, T=4, channels=8, leak=False):
            super().__init__()
            self.T, self.leak, self.calls = T, leak, 0
            self.conv_fc = nn.Sequential(
                layer.Conv2d(1, channels, kernel_size=3, padding=1, bias=False), layer.BatchNorm2d(channels),
                neuron.IFNode(surrogate_function=surrogate.ATan()), layer.MaxPool2d(2, 2),
                layer.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False), layer.BatchNorm2d(channels),
                neuron.IFNode(surrogate_function=surrogate.ATan()), layer.MaxPool2d(2, 2),
                layer.Flatten(), layer.Linear(channels * 2 * 2, 32, bias=False),
                neuron.IFNode(surrogate_function=surrogate.ATan()), layer.Linear(32, 10, bias=False),
                neuron.IFNode(surrogate_function=surrogate.ATan()),
            )
            functional.set_step_mode(self, step_mode="m")

        def forward(self, x):
            x_seq = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
            out = self.conv_fc(x_seq).mean(0)
            if self.leak:
                self.calls += 1
                out = out + 0.01 * self.calls
            return out


    def build(**kwargs):
        return CSNN(**kwargs)
    """
)


def _custom_card(trained, digits_card, where, io_contract=None, **arch_args):
    from models_zoo.cards import card_to_toml, sha256_file

    where.mkdir(parents=True, exist_ok=True)
    (where / "csnn.py").write_text(MODEL_FILE)
    ckpt = where / "csnn.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(ckpt))
    data = tomllib.loads(digits_card.path.read_text())
    data.update(id="tutorial-csnn-digits", architecture="csnn.py:build", architecture_args=dict(arch_args),
                checkpoint=ckpt.name, sha256=sha256_file(ckpt), size_bytes=ckpt.stat().st_size, time_steps=T,
                claimed_clean_acc=50.0, training_surrogate={"family": "atan", "width": 2.0})
    data["neuron"] = {"type": "IF", "tau": 2.0, "v_threshold": 1.0, "v_reset": 0.0}
    if io_contract:
        data["io_contract"] = io_contract
    card = where / "card.toml"
    card.write_text(card_to_toml(data))
    return card


def test_tutorial_model_validates_as_a_submission(trained, digits_card, isolated_outputs, monkeypatch):
    from bench.submit import validate_submission

    monkeypatch.setenv("SNNBENCH_SUBMISSIONS_DIR", str(isolated_outputs / "submissions"))
    lines: list[str] = []
    check, _ = validate_submission(_custom_card(trained, digits_card, isolated_outputs / "a"), "cpu", trust_code=True, report=lines.append)
    assert any("(image input contract)" in ln for ln in lines) and check.clean_acc > 60
    # declared wrongly: one line naming the contracts
    with pytest.raises(BenchError, match=r"submission refused \[output\]: .*declared time-major contract"):
        validate_submission(_custom_card(trained, digits_card, isolated_outputs / "b", io_contract="time-major"), "cpu", trust_code=True)


def _eval_argv(card, *args: str) -> list[str]:
    """``snnbench eval CARD ...``, with ``--trust-code`` where ``eval`` asks for it (custom code runs)."""
    from bench.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["eval"]
    trust = ["--trust-code"] if any("--trust-code" in a.option_strings for a in sub._actions) else []
    return ["eval", str(card), *trust, *args]


def test_eval_of_a_leaking_custom_card_is_refused_before_attacking(trained, digits_card, isolated_outputs, capsys):
    from bench.cli import main

    card = _custom_card(trained, digits_card, isolated_outputs / "c", leak=True)
    assert main(_eval_argv(card, "--limit", "8", "--device", "cpu")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model 'tutorial-csnn-digits': state leak" in err
    assert not list((isolated_outputs / "results").rglob("*.json"))  # nothing evaluated, nothing written
    # the same code without the leak evaluates, with the same numbers as the in-memory module
    ok = _custom_card(trained, digits_card, isolated_outputs / "d")
    assert main(_eval_argv(ok, "--limit", "40", "--eps", "0.1", "--device", "cpu")) == 0
    from bench.api import benchmark

    via_card = benchmark(str(ok), eps=0.1, limit=40, device="cpu", results_dir=isolated_outputs / "results")
    in_memory = benchmark(trained, dataset="digits", eps=0.1, time_steps=T, limit=40, device="cpu")
    assert via_card.reused and via_card.clean_acc == in_memory.clean_acc and via_card.robust_acc == in_memory.robust_acc


def test_zoo_validate_runs_the_contract_and_state_leak_check(trained, digits_card, isolated_outputs):
    """`snnbench zoo validate` refuses what `eval` would refuse before attacking: a leaking model fails it."""
    from bench.custom_arch import trust_code
    from models_zoo.cards import load_card
    from models_zoo.validate import validate_card

    with trust_code():
        leaky = validate_card(load_card(_custom_card(trained, digits_card, isolated_outputs / "v1", leak=True)), check_accuracy=False)
        ok = validate_card(load_card(_custom_card(trained, digits_card, isolated_outputs / "v2")), check_accuracy=False)
        wrong = validate_card(load_card(_custom_card(trained, digits_card, isolated_outputs / "v3", io_contract="time-major")),
                              check_accuracy=False)
    assert not leaky.ok and leaky.message.startswith("input contract: state leak")
    assert ok.ok and "image input contract ok" in ok.message
    assert not wrong.ok and "declared time-major contract" in wrong.message
