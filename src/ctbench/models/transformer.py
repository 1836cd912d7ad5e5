"""A small causal Transformer encoder for the Walker2d "Transformer" row (Nature Table 3).

The CfC authors re-ran a Transformer (Vaswani et al., NeurIPS 2017) on Walker2d but state
neither its architecture nor its settings, and release no code (``reference/models.md`` §8.1).
This one is ctbench's choice, every number ours:

    e_t   = Linear([x_t, dt_t]) + PE(s_t),     s_t = sum_{k<=t} dt_k   (continuous time)
    PE(s) = [sin(s / 10000^(2i/d)), cos(s / 10000^(2i/d))]_i           (Vaswani's encoding at the real time s)
    z     = TransformerEncoder(e) with a causal mask (step t attends to steps <= t)
    out   = Linear(z_t)  at every step (``sequence``), or at the last valid / last observed step

So the elapsed time enters twice: as an extra input feature and through the time encoding of
its running sum, both causal. Padded steps (``step_mask`` False) are never attended to (except by
themselves, so that no row is empty). Post-LN encoder layers (torch's default, as Vaswani),
ReLU feed-forward, dropout 0.1 (torch's default).
"""

from __future__ import annotations

import math
from typing import List, Optional

import torch
from torch import Tensor, nn

from ctbench.data.batch import Batch
from ctbench.sequence import READOUTS, forward_fill


def time_encoding(s: Tensor, d_model: int, base: float = 10000.0) -> Tensor:
    """Sinusoidal encoding of real-valued times ``s`` (B, T) -> (B, T, d_model)."""
    half = d_model // 2
    freq = torch.exp(-math.log(base) * torch.arange(half, device=s.device, dtype=s.dtype) * 2.0 / d_model)
    angles = s.unsqueeze(-1) * freq
    pe = torch.zeros(*s.shape, d_model, device=s.device, dtype=s.dtype)
    pe[..., 0 : 2 * half : 2] = torch.sin(angles)
    pe[..., 1 : 2 * half : 2] = torch.cos(angles)
    return pe


class TransformerNetwork(nn.Module):
    """Causal self-attention over the window; a drop-in for ``SequenceModel`` (same Batch, same shapes)."""

    def __init__(
        self,
        input_size: int,
        n_outputs: int,
        readout: str = "sequence",
        append_mask: bool = False,
        tau: float = 1.0,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        dim_feedforward: int = 128,
        dropout: float = 0.1,
        causal: bool = True,
        time_feature: bool = True,
        time_encoding: bool = True,
        time_base: float = 10000.0,
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; known: {', '.join(READOUTS)}")
        self.input_size = input_size
        self.readout = readout
        self.append_mask = append_mask
        self.tau = tau
        self.d_model = d_model
        self.n_heads = n_heads
        self.causal = causal
        self.time_feature = time_feature
        self.use_time_encoding = time_encoding
        self.time_base = time_base
        self.input_map = nn.Linear(input_size + (1 if time_feature else 0), d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_outputs)

    # the hooks ctbench.task calls on every model
    def regularized_weights(self) -> List[Tensor]:
        return [p for p in self.parameters() if p.ndim >= 2]

    def apply_constraints(self) -> None:
        pass

    def encode_inputs(self, batch: Batch) -> Tensor:
        x = batch.x
        if not torch.is_floating_point(x):
            raise ValueError("TransformerNetwork takes float features, not token ids")
        if batch.obs_mask is not None and self.append_mask:
            x = torch.cat([forward_fill(x, batch.obs_mask), batch.obs_mask.to(x.dtype)], dim=-1)
        return x

    def attention_mask(self, step_mask: Optional[Tensor], steps: int, device: torch.device) -> Optional[Tensor]:
        """Boolean mask (True = not allowed): (T, T), or (B * heads, T, T) with padding."""
        blocked = None
        if self.causal:
            blocked = torch.triu(torch.ones(steps, steps, dtype=torch.bool, device=device), diagonal=1)
        if step_mask is None:
            return blocked
        padded = (~step_mask.bool()).unsqueeze(1).expand(-1, steps, -1)  # (B, T_query, T_key)
        blocked = padded if blocked is None else (padded | blocked)
        blocked = blocked & ~torch.eye(steps, dtype=torch.bool, device=device)  # a step always sees itself
        return blocked.repeat_interleave(self.n_heads, dim=0)

    def forward(self, batch: Batch) -> Tensor:
        """Outputs (B, T, O) for the ``sequence`` readout, else (B, O)."""
        x = self.encode_inputs(batch)
        dt = batch.dt.to(x.dtype) * self.tau
        if batch.step_mask is not None:
            dt = dt * batch.step_mask.to(x.dtype)
        feats = torch.cat([x, dt.unsqueeze(-1)], dim=-1) if self.time_feature else x
        e = self.input_map(feats)
        if self.use_time_encoding:
            e = e + time_encoding(torch.cumsum(dt, dim=1), self.d_model, self.time_base)
        steps = x.shape[1]
        z = self.encoder(e, mask=self.attention_mask(batch.step_mask, steps, x.device))
        if self.readout == "sequence":
            return self.head(z)
        t_idx = torch.arange(steps, device=x.device).unsqueeze(0)
        if self.readout == "last":
            valid = batch.step_mask.bool() if batch.step_mask is not None else torch.ones_like(z[..., 0], dtype=torch.bool)
        else:  # last_observed: the last step with any observation (step 0 if none, as SequenceModel)
            valid = batch.obs_mask.any(dim=-1)
        idx = torch.where(valid, t_idx, torch.zeros_like(t_idx)).max(dim=1).values
        return self.head(z[torch.arange(z.shape[0], device=z.device), idx])
