# CIFAR-100 in torchvision's layout: <data_root>/cifar-100-python/{train,test,meta}. Never downloaded.
_base_ = './cifar10.py'
dataset_type = 'SafeCIFAR100'
num_classes = 100
train_dataloader = dict(dataset=dict(type=dataset_type))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
data_preprocessor = dict(mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418])
