# The POW-1 recipe of the detectors (offset reading, p = 1 + alpha): one exponent per channel
# after the ReLUs of stages 2-4, L1 penalty 1e-4 on alpha, and the hook that adds the penalty
# to the loss (shown in the log as loss_alpha_reg). A config takes it with
#   _base_ = [<its detector>, '<...>/_base_/models/pow1_recipe.py']
#   model = dict(backbone={{_base_._pow1_backbone}})
#   custom_hooks = {{_base_._pow1_hooks}}
# (``_``-prefixed: helper variables, which no runner reads and the study keys leave out).
_pow1_backbone = dict(
    type='ResNetPOW',
    quant_cfg=dict(num_splits=1, alpha_reg=dict(type='L1', weight=1e-4)),
    stage_with_quant=(False, True, True, True))
_pow1_hooks = [dict(type='AlphaRegularizationHook')]
