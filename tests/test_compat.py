"""fq_det.compat: checkpoints written by mmengine's Runner load under torch's
``weights_only=True`` default (resume and load_checkpoint), with protection kept on."""
from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch.utils.data import Dataset

import fq_det  # noqa: F401  (applies the compatibility fixes)


class _LinearModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, x, y=None, mode='tensor'):
        out = self.linear(x)
        if mode == 'loss':
            return dict(loss=((out - y) ** 2).mean())
        return out


class _Points(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i):
        return dict(x=torch.full((2,), float(i)), y=torch.ones(1))


def _runner(work_dir, max_iters: int, resume: bool = False) -> Runner:
    return Runner(
        model=_LinearModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_Points(), batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        resume=resume, experiment_name=f'exp_{max_iters}_{resume}')


def test_runner_checkpoint_loads_with_weights_only(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    ckpt_file = tmp_path / 'iter_2.pth'
    ckpt = torch.load(ckpt_file)  # torch's default: weights_only=True
    assert ckpt['meta']['iter'] == 2
    assert 'train/loss' in ckpt['message_hub']['log_scalars']
    # nothing outside the allow-list, and in particular no builtins.getattr
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(ckpt_file)) == []
    state = load_checkpoint(_LinearModel(), str(ckpt_file))
    assert 'linear.weight' in state['state_dict']


def test_runner_resume_continues_from_checkpoint(tmp_path):
    _runner(tmp_path, max_iters=2).train()
    runner = _runner(tmp_path, max_iters=4, resume=True)
    runner.train()
    assert runner.iter == 4
    # the resumed message hub still computes statistics (default methods restored)
    assert runner.message_hub.get_scalar('train/loss').mean() >= 0


def test_untrusted_globals_stay_blocked(tmp_path):
    """Protection stays on: an arbitrary callable in a checkpoint is refused."""
    evil = tmp_path / 'evil.pth'
    torch.save({'payload': print}, evil)  # a builtin function, never allow-listed
    with pytest.raises(pickle.UnpicklingError):
        torch.load(evil)
