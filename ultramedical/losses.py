"""The preference-learning losses, as published. Each returns the batch-mean loss.

- DPO (Rafailov et al. 2023): -log sigmoid(beta * delta), where
  delta = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l)).
- cDPO: label smoothing eps mixes in the loss of the flipped label: (1-eps) * l(delta) + eps * l(-delta).
- IPO (Azar et al. 2023): (delta - 1/(2 beta))^2 on length-averaged log-probs (the caller averages).
- KTO (Ethayarajh et al. 2024): 1 - sigmoid(beta (r - z)) for desirable, 1 - sigmoid(beta (z - r)) for
  undesirable, r the log-ratio and z the batch KL estimate from mismatched pairs, detached and clamped at 0.
- Bradley-Terry reward loss: -log sigmoid(r_c - r_r - margin) + center_coef * mean((r_c + r_r)^2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DPO_LOSS_TYPES = ("sigmoid", "ipo")


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, chosen_rewards, rejected_rewards); rewards are beta times the log-ratios, detached."""
    chosen_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_ratio = policy_rejected_logps - ref_rejected_logps
    delta = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -(1 - label_smoothing) * F.logsigmoid(beta * delta) - label_smoothing * F.logsigmoid(
            -beta * delta
        )
    elif loss_type == "ipo":
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss_type '{loss_type}' (expected one of {', '.join(DPO_LOSS_TYPES)})")
    return losses.mean(), beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def kto_loss(
    policy_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl_policy_logps: torch.Tensor,
    kl_ref_logps: torch.Tensor,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, rewards, kl); `desirable` is a bool tensor; kl is the detached, clamped reference point."""
    kl = (kl_policy_logps - kl_ref_logps).mean().clamp(min=0).detach()
    ratio = policy_logps - ref_logps
    desirable = desirable.to(torch.bool)
    losses = torch.where(
        desirable,
        desirable_weight * (1 - torch.sigmoid(beta * (ratio - kl))),
        undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio))),
    )
    return losses.mean(), beta * ratio.detach(), kl


def reward_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_coef: float = 0.0,
) -> torch.Tensor:
    """Bradley-Terry loss with an optional per-pair margin and reward centering."""
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff).mean()
    if center_coef:
        loss = loss + center_coef * ((chosen_rewards + rejected_rewards) ** 2).mean()
    return loss
