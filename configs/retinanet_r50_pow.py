# RetinaNet (single stage), ResNet-50+POW-1, VOC 2007 trainval -> VOC 2007 test, with
# MMDetection's VOC recipe (mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py) on VOC 2007 only.
_base_ = 'mmdet::pascal_voc/retinanet_r50_fpn_1x_voc0712.py'

custom_imports = dict(imports=['fq_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='ResNetPOW',
        quant_cfg=dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4)),
        stage_with_quant=(False, True, True, True)))

custom_hooks = [dict(type='AlphaRegularizationHook')]

# Keep the base's VOC2007 entry of its ConcatDataset (inside the 3x RepeatDataset).
train_dataloader = dict(
    dataset=dict(dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset.datasets[0])))
