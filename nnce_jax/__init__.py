"""nnce_jax: noise-contrastive estimation, Noisier NCE and friends in JAX.

Modules: ``objectives`` (losses on log-ratio logits), ``noise`` (base distributions and
waymarks), ``models`` (Flax log-ratio models), ``estimation`` (the ratio-estimation loss),
``parallel`` / ``train`` / ``checkpoint`` (the data-parallel engine), ``closed_form``
(Gaussian truth) and ``data``.
"""

__version__ = '0.1.0'
