# Faster R-CNN, ResNet-50 + FPN, Pascal VOC 2007 trainval -> VOC 2007 test (plain baseline).
# MMDetection's VOC recipe (mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py: 4 epochs over
# the training set repeated 3 times, SGD lr 0.01, step at epoch 3, ImageNet-pretrained
# torchvision://resnet50 backbone) with VOC 2007 only: the base concatenates VOC2007 + VOC2012.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'

custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)

# Keep the base's VOC2007 entry of its ConcatDataset (inside the 3x RepeatDataset).
train_dataloader = dict(
    dataset=dict(dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset.datasets[0])))
