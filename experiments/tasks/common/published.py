"""The papers' numbers that tasks and reports set beside ours: references, never truth (each
was measured by another protocol, at another scale)."""

# The N²CE paper's AUPRC (DAMC protocol, all 70,000 MNIST images, checkpoint chosen on test
# AUPRC) for digits 1, 4, 5, 7, 9.
PAPER_AUPRC = {'noisier_nce_k3': {1: 0.959, 4: 0.935, 5: 0.959, 7: 0.845, 9: 0.854},
               'noisier_nce_k1': {1: 0.910, 4: 0.911, 5: 0.935, 7: 0.779, 9: 0.699},
               'nce': {1: 0.702, 4: 0.829, 5: 0.764, 7: 0.605, 9: 0.502}}
