_base_ = './smallnet-pow1-l2_cifar100.py'  # HPOW option: per-sample exponents in the middle block
model = dict(backbone=dict(quant_cfg=dict(type='HPOW', reduction=8)))
