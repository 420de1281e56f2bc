"""Kernel launches and synchronising calls of a piece of code, counted with ``torch.profiler``.

On CUDA the profiler records each kernel (and memset / memcpy) the GPU ran: that count is
exact. On CPU it counts the calls that would each launch one kernel on a GPU: the device
path's Triton kernels (recorded as ``triton::<name>`` by :mod:`.fused`, whatever the
interpreter does inside) and every outermost ``aten::`` operator that computes something
(views, allocations and other metadata-only operators are left out, their inner calls
counted). Operators that make
the host wait for the device (``.item()``, ``bool()`` of a tensor, ``nonzero``, ...) are
listed separately, by name.
"""
from __future__ import annotations

from typing import Any, Callable, List, NamedTuple

import torch
from torch.profiler import ProfilerActivity, profile

#: operators that launch no kernel (views, allocations, metadata)
NO_KERNEL_OPS = frozenset({
    'aten::empty', 'aten::empty_like', 'aten::empty_strided', 'aten::view', 'aten::as_strided',
    'aten::reshape', 'aten::_reshape_alias', 'aten::expand', 'aten::expand_as', 'aten::detach',
    'aten::detach_', 'aten::alias', 'aten::t', 'aten::transpose', 'aten::permute',
    'aten::select', 'aten::slice', 'aten::unsqueeze', 'aten::squeeze', 'aten::resolve_conj',
    'aten::resolve_neg', 'aten::lift_fresh', 'aten::contiguous', 'aten::to', 'aten::result_type',
    'aten::size', 'aten::stride', 'aten::numel', 'aten::unbind', 'aten::split', 'aten::chunk',
    'aten::narrow', 'aten::_unsafe_view', 'aten::flatten', 'aten::set_', 'aten::view_as',
    'aten::unflatten', 'aten::is_floating_point', 'aten::dim', 'aten::requires_grad_',
})
#: operators that make the host wait for the device
SYNC_OPS = frozenset({
    'aten::item', 'aten::_local_scalar_dense', 'aten::nonzero', 'aten::is_nonzero',
    'aten::equal', 'aten::masked_select', 'aten::unique', 'aten::_unique2', 'aten::allclose',
    'aten::tolist', 'aten::_assert_async',
})


class CallCount(NamedTuple):
    """``launches``: kernels (CUDA) or kernel-launching calls (CPU); ``syncs``: the
    synchronising operators that ran, in order; ``names``: what was counted."""
    launches: int
    syncs: List[str]
    names: List[str]


def _launching_calls(events) -> List[str]:
    """Names of the outermost computing ``aten::`` calls and ``triton::`` ranges of a CPU
    profile (a metadata-only operator is looked into: ``aten::to`` may copy)."""
    names: List[str] = []

    def visit(event) -> None:
        name = event.name
        if name.startswith('triton::') or name.startswith('aten::') and \
                name not in NO_KERNEL_OPS and name not in SYNC_OPS:
            names.append(name)
            return
        for child in event.cpu_children:
            visit(child)

    for event in events:
        if event.cpu_parent is None:
            visit(event)
    return names


def count_calls(fn: Callable[[], Any], device: str = 'cpu') -> CallCount:
    """Run ``fn()`` once under the profiler; count its launches and synchronisations."""
    activities = [ProfilerActivity.CPU]
    if device == 'cuda':
        activities.append(ProfilerActivity.CUDA)
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
    events = prof.events()
    syncs = [e.name for e in events if e.name in SYNC_OPS and not (  # outermost ones
        e.cpu_parent is not None and e.cpu_parent.name in SYNC_OPS)]
    if device == 'cuda':
        names = [e.name for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    else:
        names = _launching_calls(events)
    return CallCount(len(names), syncs, names)
