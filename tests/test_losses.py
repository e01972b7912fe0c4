"""DPO / cDPO / IPO, KTO and the Bradley-Terry reward loss against values worked out by hand with `math`."""

from __future__ import annotations

import math

import pytest
import torch

from ultramedical.losses import dpo_loss, kto_loss, reward_loss

TOL = 1e-6

# Summed log-probs of three pairs (policy and reference, chosen and rejected).
PC2 = [-10.0, -4.0, -7.0]
PR2 = [-12.0, -3.0, -6.0]
RC2 = [-11.0, -4.5, -6.5]
RR2 = [-11.5, -2.0, -8.0]
# delta = (pc - rc) - (pr - rr): 1 - (-0.5), 0.5 - (-1), (-0.5) - 2
DELTAS2 = [1.5, 1.5, -2.5]


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def log_sigmoid(x: float) -> float:
    return -math.log(1.0 + math.exp(-x))


def t(values, grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("beta", [0.1, 0.5, 2.0])
def test_dpo_sigmoid(beta):
    loss, chosen_rewards, rejected_rewards = dpo_loss(t(PC2), t(PR2), t(RC2), t(RR2), beta=beta)
    expected = sum(-log_sigmoid(beta * d) for d in DELTAS2) / 3
    assert loss.item() == pytest.approx(expected, abs=TOL)
    # written out once more without the helper: -log(1 / (1 + exp(-beta * d)))
    expected_again = sum(math.log(1 + math.exp(-beta * d)) for d in DELTAS2) / 3
    assert loss.item() == pytest.approx(expected_again, abs=TOL)
    assert chosen_rewards.tolist() == pytest.approx(
        [beta * (pc - rc) for pc, rc in zip(PC2, RC2, strict=True)]
    )
    assert rejected_rewards.tolist() == pytest.approx(
        [beta * (pr - rr) for pr, rr in zip(PR2, RR2, strict=True)]
    )
    # beta=0.5 pair 0: chosen ratio 1.0, rejected ratio -0.5
    if beta == 0.5:
        assert chosen_rewards[0].item() == pytest.approx(0.5) and rejected_rewards[0].item() == pytest.approx(
            -0.25
        )


def test_dpo_concrete_value():
    # beta 0.1, deltas 1.5, 1.5, -2.5 -> mean of log(1 + e^-0.15), log(1 + e^-0.15), log(1 + e^0.25)
    loss, _, _ = dpo_loss(t(PC2), t(PR2), t(RC2), t(RR2), beta=0.1)
    expected = (2 * math.log(1 + math.exp(-0.15)) + math.log(1 + math.exp(0.25))) / 3
    assert expected == pytest.approx(0.6893, abs=1e-4)  # 0.6210, 0.6210, 0.8259
    assert loss.item() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_cdpo_label_smoothing(eps):
    beta = 0.5
    loss, _, _ = dpo_loss(t(PC2), t(PR2), t(RC2), t(RR2), beta=beta, label_smoothing=eps)
    per_pair = [
        (1 - eps) * math.log(1 + math.exp(-beta * d)) + eps * math.log(1 + math.exp(beta * d))
        for d in DELTAS2
    ]
    assert loss.item() == pytest.approx(sum(per_pair) / 3, abs=TOL)


def test_cdpo_at_one_half_is_symmetric():
    # eps 0.5 weighs both labels equally: the loss is the same for delta and -delta
    a, _, _ = dpo_loss(t([-1.0]), t([-3.0]), t([-2.0]), t([-2.0]), beta=1.0, label_smoothing=0.5)
    b, _, _ = dpo_loss(t([-3.0]), t([-1.0]), t([-2.0]), t([-2.0]), beta=1.0, label_smoothing=0.5)
    assert a.item() == pytest.approx(b.item(), abs=TOL)
    assert a.item() == pytest.approx(
        0.5 * math.log(1 + math.exp(-2)) + 0.5 * math.log(1 + math.exp(2)), abs=TOL
    )


@pytest.mark.parametrize("beta", [0.1, 0.25, 1.0])
def test_ipo(beta):
    loss, chosen_rewards, _ = dpo_loss(t(PC2), t(PR2), t(RC2), t(RR2), beta=beta, loss_type="ipo")
    expected = sum((d - 1 / (2 * beta)) ** 2 for d in DELTAS2) / 3
    assert loss.item() == pytest.approx(expected, abs=TOL)
    assert chosen_rewards[2].item() == pytest.approx(beta * (-7.0 - -6.5))


def test_ipo_concrete_value():
    # beta 0.25 -> target 2: (1.5-2)^2, (1.5-2)^2, (-2.5-2)^2 = 0.25, 0.25, 20.25 -> mean 6.91666...
    loss, _, _ = dpo_loss(t(PC2), t(PR2), t(RC2), t(RR2), beta=0.25, loss_type="ipo")
    assert loss.item() == pytest.approx(20.75 / 3, abs=TOL)


def test_dpo_unknown_loss_type():
    with pytest.raises(ValueError, match="hinge"):
        dpo_loss(t(PC2), t(PR2), t(RC2), t(RR2), loss_type="hinge")


def test_dpo_gradients_flow_to_the_policy_only():
    pc, pr = t(PC2, grad=True), t(PR2, grad=True)
    rc, rr = t(RC2), t(RR2)
    loss, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, rc, rr, beta=0.1)
    assert not chosen_rewards.requires_grad and not rejected_rewards.requires_grad
    loss.backward()
    # d loss / d pc_i = -(beta / n) * sigmoid(-beta * delta_i); d / d pr_i is its negative
    expected = [-(0.1 / 3) * sigmoid(-0.1 * d) for d in DELTAS2]
    assert pc.grad.tolist() == pytest.approx(expected, abs=TOL)
    assert pr.grad.tolist() == pytest.approx([-g for g in expected], abs=TOL)
    assert all(g != 0 for g in pc.grad.tolist())


# KTO: four examples, the first two desirable.
KP = [-5.0, -6.0, -4.0, -8.0]
KR = [-5.5, -5.0, -4.5, -7.0]
DESIRABLE = [True, False, True, False]
RATIOS = [0.5, -1.0, 0.5, -1.0]


def kto_expected(kl_p, kl_r, beta, dw=1.0, uw=1.0, desirable=DESIRABLE):
    kl = max(0.0, sum(p - r for p, r in zip(kl_p, kl_r, strict=True)) / len(kl_p))
    losses = []
    for ratio, good in zip(RATIOS, desirable, strict=True):
        if good:
            losses.append(dw * (1 - 1 / (1 + math.exp(-beta * (ratio - kl)))))
        else:
            losses.append(uw * (1 - 1 / (1 + math.exp(-beta * (kl - ratio)))))
    return sum(losses) / len(losses), kl


@pytest.mark.parametrize(
    ("kl_p", "kl_r"),
    [
        ([-6.0, -7.0, -5.0, -9.0], [-6.5, -7.5, -5.0, -9.2]),  # positive KL estimate: 0.3
        ([-6.0, -7.0, -5.0, -9.0], [-5.0, -6.0, -4.0, -8.0]),  # negative estimate, clamped to 0
    ],
)
@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_kto(kl_p, kl_r, beta):
    loss, rewards, kl = kto_loss(t(KP), t(KR), torch.tensor(DESIRABLE), t(kl_p), t(kl_r), beta=beta)
    expected, expected_kl = kto_expected(kl_p, kl_r, beta)
    assert kl.item() == pytest.approx(expected_kl, abs=TOL)
    assert loss.item() == pytest.approx(expected, abs=TOL)
    assert rewards.tolist() == pytest.approx([beta * r for r in RATIOS], abs=TOL)


def test_kto_kl_values():
    _, _, kl = kto_loss(
        t(KP),
        t(KR),
        torch.tensor(DESIRABLE),
        t([-6.0, -7.0, -5.0, -9.0]),
        t([-6.5, -7.5, -5.0, -9.2]),
        beta=0.1,
    )
    assert kl.item() == pytest.approx((0.5 + 0.5 + 0.0 + 0.2) / 4, abs=TOL)
    _, _, clamped = kto_loss(t(KP), t(KR), torch.tensor(DESIRABLE), t([-9.0] * 4), t([-1.0] * 4), beta=0.1)
    assert clamped.item() == 0.0


def test_kto_weights_and_int_labels():
    kl_p, kl_r = [-6.0, -7.0, -5.0, -9.0], [-6.5, -7.5, -5.0, -9.2]
    loss, _, _ = kto_loss(
        t(KP),
        t(KR),
        torch.tensor([1, 0, 1, 0]),  # any integer mask works
        t(kl_p),
        t(kl_r),
        beta=0.5,
        desirable_weight=1.0,
        undesirable_weight=1.33,
    )
    expected, _ = kto_expected(kl_p, kl_r, 0.5, dw=1.0, uw=1.33)
    assert loss.item() == pytest.approx(expected, abs=TOL)
    unweighted, _ = kto_expected(kl_p, kl_r, 0.5)
    assert expected != pytest.approx(unweighted)


def test_kto_all_undesirable():
    kl_p, kl_r = [-6.0, -7.0, -5.0, -9.0], [-6.5, -7.5, -5.0, -9.2]
    flags = [False] * 4
    loss, _, _ = kto_loss(
        t(KP), t(KR), torch.tensor(flags), t(kl_p), t(kl_r), beta=0.2, undesirable_weight=2.0
    )
    expected, _ = kto_expected(kl_p, kl_r, 0.2, uw=2.0, desirable=flags)
    assert loss.item() == pytest.approx(expected, abs=TOL)


def test_kto_gradients_and_detached_kl():
    policy = t(KP, grad=True)
    kl_policy = t([-6.0, -7.0, -5.0, -9.0], grad=True)
    loss, rewards, kl = kto_loss(
        policy, t(KR), torch.tensor(DESIRABLE), kl_policy, t([-6.5, -7.5, -5.0, -9.2]), beta=0.1
    )
    assert not kl.requires_grad and kl.grad_fn is None
    assert not rewards.requires_grad
    loss.backward()
    assert policy.grad is not None and all(g != 0 for g in policy.grad.tolist())
    # The reference point is a constant: no gradient reaches the mismatched-pair log-probs.
    assert kl_policy.grad is None
    # desirable: d/dr [1 - s(b(r - z))] / n = -b s (1 - s) / n < 0; undesirable: > 0
    z = 0.3
    for ratio, good, grad in zip(RATIOS, DESIRABLE, policy.grad.tolist(), strict=True):
        s = sigmoid(0.1 * ((ratio - z) if good else (z - ratio)))
        expected = (-1 if good else 1) * 0.1 * s * (1 - s) / 4
        assert grad == pytest.approx(expected, abs=TOL)


CR = [2.0, 0.5, -1.0]
RJ = [1.0, 1.5, -3.0]


def test_reward_loss_plain():
    loss = reward_loss(t(CR), t(RJ))
    expected = sum(math.log(1 + math.exp(-(c - r))) for c, r in zip(CR, RJ, strict=True)) / 3
    assert loss.item() == pytest.approx(expected, abs=TOL)
    # diffs 1, -1, 2
    assert expected == pytest.approx(
        (math.log(1 + math.exp(-1)) + math.log(1 + math.e) + math.log(1 + math.exp(-2))) / 3
    )


def test_reward_loss_margin():
    margin = [0.5, 0.0, 3.0]
    loss = reward_loss(t(CR), t(RJ), margin=t(margin))
    expected = sum(math.log(1 + math.exp(-(c - r - m))) for c, r, m in zip(CR, RJ, margin, strict=True)) / 3
    assert loss.item() == pytest.approx(expected, abs=TOL)
    assert loss.item() > reward_loss(t(CR), t(RJ)).item()


@pytest.mark.parametrize("coef", [0.01, 0.5])
def test_reward_loss_centering(coef):
    loss = reward_loss(t(CR), t(RJ), margin=t([0.5, 0.0, 3.0]), center_coef=coef)
    bt = (
        sum(math.log(1 + math.exp(-(c - r - m))) for c, r, m in zip(CR, RJ, [0.5, 0.0, 3.0], strict=True)) / 3
    )
    # (r_c + r_r)^2: 9, 4, 16 -> mean 29/3
    center = sum((c + r) ** 2 for c, r in zip(CR, RJ, strict=True)) / 3
    assert center == pytest.approx(29 / 3)
    assert loss.item() == pytest.approx(bt + coef * center, abs=TOL)


def test_reward_loss_gradients():
    chosen, rejected = t(CR, grad=True), t(RJ, grad=True)
    reward_loss(chosen, rejected, center_coef=0.1).backward()
    for i, (c, r) in enumerate(zip(CR, RJ, strict=True)):
        bt = -sigmoid(-(c - r)) / 3
        center = 0.1 * 2 * (c + r) / 3
        assert chosen.grad[i].item() == pytest.approx(bt + center, abs=TOL)
        assert rejected.grad[i].item() == pytest.approx(-bt + center, abs=TOL)


def test_losses_in_float32_are_close_too():
    loss, _, _ = dpo_loss(
        torch.tensor(PC2), torch.tensor(PR2), torch.tensor(RC2), torch.tensor(RR2), beta=0.1
    )
    assert loss.dtype == torch.float32
    expected = (2 * math.log(1 + math.exp(-0.15)) + math.log(1 + math.exp(0.25))) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)
