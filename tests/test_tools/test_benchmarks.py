"""The benchmark scripts run and print their tables (tiny sizes; timings are not checked)."""
from __future__ import annotations

import pytest
import torch

from helpers import load_script


def test_activation_shapes_are_resnet50s():
    from mmdet.models.backbones import ResNet
    bench = load_script('tools/benchmarks/benchmark_pow_kernels.py')
    net = ResNet(depth=50)
    net.eval()  # mmdet's ResNet.train() returns None
    seen = []
    for name, module in net.named_modules():
        if name.startswith('layer') and isinstance(module, torch.nn.ReLU):
            module.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        net(torch.zeros(2, 3, 64, 64))
    assert seen == bench.resnet50_activation_shapes(2, 64)


def test_pow_kernel_benchmark_prints_its_table(capsys):
    bench = load_script('tools/benchmarks/benchmark_pow_kernels.py')
    bench.main(['--size', '64', '--repeats', '1', '--splits', '1', '4'])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith('| ReLU') or line.startswith('| POW')]
    assert rows[0].startswith('| ReLU') and any('POW-4 torch path' in r for r in rows)
    for row in rows:
        ratio = float(row.strip('| ').split('|')[-1])
        assert ratio > 0


def test_quantizer_benchmark_prints_its_table(capsys):
    bench = load_script('tools/benchmarks/benchmark_quantizers.py')
    bench.main(['--size', '32', '--depth', '18', '--repeats', '1', '--skip-memory',
                '--variants', 'ResNetPOW (k=1)', 'ResNetSF (r=10)'])
    out = capsys.readouterr().out
    assert '| ResNet | ' in out and '| ResNetPOW (k=1) | ' in out and '| ResNetSF (r=10) | ' in out
    calls = {line.split('|')[1].strip(): [int(v) for v in line.split('|')[2:6]]
             for line in out.splitlines() if line.startswith(('| ReLU |', '| SF-10 |', '| POW-'))}
    assert calls['ReLU'] == [2, 2, 0, 0]
    for name in ('SF-10', 'POW-1', 'POW-16'):  # device path: constant, no synchronisation
        fused_calls, torch_calls, fused_syncs, _ = calls[name]
        assert fused_calls <= 3 < 100 < torch_calls and fused_syncs == 0, (name, calls[name])


def test_gpu_benchmark_skips_with_one_line_without_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip('a GPU is present: tools/benchmarks/benchmark_quantizers.py --device cuda')
    bench = load_script('tools/benchmarks/benchmark_quantizers.py')
    bench.main(['--device', 'cuda'])
    out = capsys.readouterr().out.strip()
    assert out.startswith('--device cuda: no CUDA GPU') and '\n' not in out


def test_data_digest_benchmark_prints_its_table(synthetic_voc_root, capsys):
    bench = load_script('tools/benchmarks/benchmark_data_digest.py')
    result = bench.main(['--root', str(synthetic_voc_root), '--calls', '3'])
    out = capsys.readouterr().out
    assert '| read | ' in out and '| cached | ' in out and 'cached / read: ' in out
    assert result['images'] == len(list((synthetic_voc_root / 'VOC2007' / 'JPEGImages').iterdir()))
    assert result['read'] > 0 and result['cached'] > 0
