"""DMCP (Guo et al., CVPR 2020): differentiable Markov channel pruning of torchvision ResNets and
MobileNetV2, with analytic expected FLOPs, the variant sandwich rule, budget-exact derivation and
export to plain torchvision networks.

Public API:
    make_prunable, build_supernet, DMCPSupernet   the supernet (gates + slimmable torchvision net)
    MarkovGate, group_spec                        the Markov chain over channel groups
    budget_loss                                   the log_l1 FLOPs budget loss
    expected_sampling, direct_sampling, derive    architectures inside [0.95 T, T] (T in multiply-adds)
    uniform_scaling                               the uniform-width baseline within the same T
    export_pruned, build_pruned                   plain pruned networks
"""
from dmcp.derive import derive, direct_sampling, expected_sampling, export_pruned, uniform_scaling
from dmcp.export import build_pruned
from dmcp.loss import budget_loss
from dmcp.markov import MarkovGate, group_spec
from dmcp.supernet import DMCPSupernet, build_supernet, make_prunable

__all__ = ["make_prunable", "build_supernet", "DMCPSupernet", "MarkovGate", "group_spec", "budget_loss",
           "expected_sampling", "direct_sampling", "derive", "uniform_scaling", "export_pruned", "build_pruned"]
