_base_ = './smallnet-pow1-l2_cifar10.py'  # Table 1: +POW-2, L1 regularisation
model = dict(backbone=dict(quant_cfg=dict(num_splits=2, alpha_reg=dict(type='L1'))))
