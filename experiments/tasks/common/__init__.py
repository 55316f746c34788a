"""What the tasks share, so that no task imports another: each module here imports only
``experiments.core`` and the library, never another module of ``experiments.tasks``.

- ``ratio``: a ratio estimator's parts from the config (model, objective, fixed samples, KL metrics);
- ``likelihood``: the normalising-constant estimators and their table;
- ``samplers``: the diffusion teacher, its cut samplers, fine-tuning and distillation;
- ``image_data``: image datasets (opened, batched, split), the fixed classifier that judges
  28x28 samples and the teacher run's bar;
- ``published``: the papers' numbers set beside ours (references, not truth).
"""
