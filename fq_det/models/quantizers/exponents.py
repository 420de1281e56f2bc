"""How a POW / HPOW layer's learnable ``alpha`` becomes its exponent ``p``: the two readings.

The supplement leaves open what its ``alpha`` is; both readings are implemented and chosen
with ``exponent=`` in the layer's arguments (``quant_cfg``):

* ``'offset'`` (the default): ``p = 1 + alpha``. ``alpha = 0`` is the identity and the
  L1 / L2 penalty pulls ``alpha`` toward 0, i.e. toward the identity. Clamp
  ``alpha in [-0.5, 4]`` (``p in [0.5, 5]``).
* ``'direct'``: ``p = alpha``. ``alpha = 1`` is the identity (pretrained plain weights load
  unchanged) and the penalty pulls ``p`` toward 0, where ``t**p -> 1`` for every ``t > 0``:
  segment ``j`` collapses onto its upper level ``b_j + w``, a k-level staircase (k = 1:
  ``sign(x)``, times ``w``). Clamp ``p in [0.01, 5]``: at ``p = 0.01``, ``t**p >= 0.87``
  for ``t >= 1e-6``, and the input gradient ``p * t**(p-1)`` (``t`` clamped to ``T_MIN =
  1e-6`` inside the derivatives) stays below ``0.01 * 1e6**0.99 = 8.7e3``.

The reading and the clamp are part of the model: a layer keeps them in its state dict
(``<layer>._extra_state``, a float64 tensor ``[code, low, high]``), and loading a
checkpoint of another reading or clamp raises :class:`ExponentReadingError` instead of
silently computing another network. Checkpoints without that entry were written before it
existed, always with the offset reading: a direct-reading layer refuses their exponents.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor


class ExponentReadingError(ValueError):
    """A checkpoint's exponents were learned under another reading or clamp."""


@dataclass(frozen=True)
class ExponentReading:
    """``p = offset + clamp(alpha, range)``; ``identity``: the ``alpha`` of ``p = 1``."""
    name: str
    code: int
    offset: float
    default_range: Tuple[float, float]

    @property
    def identity(self) -> float:
        return 1.0 - self.offset

    def check_range(self, layer: str, alpha_range: Sequence[float]) -> Tuple[float, float]:
        """``(low, high)`` with ``p`` positive over the range and the identity inside it."""
        try:
            lo, hi = (float(v) for v in alpha_range)
        except (TypeError, ValueError):
            raise ValueError(f'{layer} alpha_range must be two numbers (low, high), '
                             f'got {alpha_range!r}') from None
        if not (lo + self.offset > 0 and lo <= self.identity <= hi):
            raise ValueError(
                f'{layer} alpha_range with exponent={self.name!r} (p = '
                f'{"1 + alpha" if self.offset else "alpha"}) must satisfy p > 0 at low and '
                f'low <= {self.identity:g} <= high (the identity), got {tuple(alpha_range)}')
        return lo, hi


READINGS = {
    'offset': ExponentReading('offset', 0, 1.0, (-0.5, 4.0)),
    'direct': ExponentReading('direct', 1, 0.0, (0.01, 5.0)),
}


def get_reading(layer: str, exponent: str) -> ExponentReading:
    if exponent not in READINGS:
        raise ValueError(f'{layer} exponent must be one of {", ".join(map(repr, READINGS))} '
                         f"('offset': p = 1 + alpha, 'direct': p = alpha), got {exponent!r}")
    return READINGS[exponent]


def _describe(code: float, lo: float, hi: float) -> str:
    names = {r.code: r.name for r in READINGS.values()}
    return f"exponent={names.get(int(code), f'<unknown code {code:g}>')!r}, " \
           f'alpha_range=({lo:g}, {hi:g})'


class ExponentReadingMixin:
    """State-dict handling shared by POW and HPOW (``self.reading``, ``self.alpha_range``).

    ``_param_key``: the name of a parameter every checkpoint of the layer holds; its
    presence without ``_extra_state`` marks a checkpoint written before the entry existed.
    """

    reading: ExponentReading
    alpha_range: Tuple[float, float]
    _param_key = 'alpha'

    def exponent_of(self, alpha: Tensor) -> Tensor:
        """``p = offset + clamp(alpha, alpha_range)``."""
        alpha = alpha.clamp(*self.alpha_range)
        return alpha + 1 if self.reading.offset else alpha

    def get_extra_state(self) -> Tensor:
        return torch.tensor([float(self.reading.code), *self.alpha_range], dtype=torch.float64)

    def set_extra_state(self, state) -> None:
        values = torch.as_tensor(state, dtype=torch.float64).flatten().tolist() \
            if isinstance(state, (Tensor, list, tuple)) else None
        if values is None or len(values) != 3:
            raise ExponentReadingError(f'{type(self).__name__}: the checkpoint\'s exponent '
                                       f'record is not [code, low, high]: {state!r}')
        mine = [float(self.reading.code), *self.alpha_range]
        if values != mine:
            raise ExponentReadingError(
                f'{type(self).__name__}: the checkpoint was trained with '
                f'{_describe(*values)}, this model is built with {_describe(*mine)}; its '
                'exponents would compute another network. Build the model with the '
                "checkpoint's settings (quant_cfg exponent / alpha_range)")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        legacy = prefix + self._param_key in state_dict and prefix + '_extra_state' not in \
            state_dict
        if legacy and self.reading.name != 'offset':
            raise ExponentReadingError(
                f'{type(self).__name__} {prefix.rstrip(".") or "layer"}: the checkpoint holds '
                "exponents without a reading record, i.e. learned with exponent='offset' "
                f"(p = 1 + alpha); this model is built with exponent={self.reading.name!r}. "
                "Build it with exponent='offset' to use them")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,  # type: ignore
                                      missing_keys, unexpected_keys, error_msgs)
        if legacy:  # not an error: the record did not exist when the checkpoint was written
            key = prefix + '_extra_state'
            if key in missing_keys:
                missing_keys.remove(key)


def reading_of_state(state: dict, layer: str) -> Optional[Tuple[ExponentReading, Tuple[float,
                                                                                        float]]]:
    """The reading and clamp recorded for ``layer`` in a state dict, or ``None`` (a checkpoint
    written before the record existed: the offset reading)."""
    value = state.get(f'{layer}._extra_state')
    if not isinstance(value, Tensor) or value.numel() != 3:
        return None
    code, lo, hi = value.to(torch.float64).tolist()
    for r in READINGS.values():
        if r.code == int(code):
            return r, (lo, hi)
    raise ExponentReadingError(f'{layer}: unknown exponent reading code {code:g} in the state '
                               'dict')
