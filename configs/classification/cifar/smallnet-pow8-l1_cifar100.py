_base_ = './smallnet-pow1-l2_cifar100.py'  # Table 1: +POW-8, L1 regularisation
model = dict(backbone=dict(quant_cfg=dict(num_splits=8, alpha_reg=dict(type='L1'))))
