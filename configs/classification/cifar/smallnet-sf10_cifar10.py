_base_ = './smallnet_cifar10.py'  # SF option: scaled floor, resolution 10, in the middle block
model = dict(backbone=dict(quant_cfg=dict(type='SF', resolution=10)))
