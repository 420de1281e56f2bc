# Supplement Table 3, "ResNet50".
_base_ = './resnet18_imagenet.py'
model = dict(backbone=dict(depth=50), head=dict(in_channels=2048))
