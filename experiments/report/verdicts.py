"""One vocabulary for every report's claims: a claim is reproduced, refuted or inconclusive,
with the test that decides it, the numbers it read and, when it is inconclusive, why."""

import dataclasses

REPRODUCED, REFUTED, INCONCLUSIVE = 'reproduced', 'refuted', 'inconclusive'
OUTCOMES = (REPRODUCED, REFUTED, INCONCLUSIVE)
# What a claim is: the paper's own, the project's hypothesis about the method, or an issue's goal
# for a benchmark. Each has its own table: a goal missed is not the paper refuted.
PAPER, HYPOTHESIS, GOAL = 'paper', 'hypothesis', 'goal'
KINDS = {PAPER: "The paper's claims", HYPOTHESIS: "The project's hypotheses", GOAL: "The benchmarks' goals"}
MARKS = {REPRODUCED: 'reproduced', REFUTED: '**refuted**', INCONCLUSIVE: '*inconclusive*'}


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim: str      # as the paper (or the issue) states it
  verdict: str    # REPRODUCED | REFUTED | INCONCLUSIVE
  test: str = ''  # what decides it
  numbers: dict = dataclasses.field(default_factory=dict)  # the numbers the test read, by name
  evidence: str = ''  # the numbers in a sentence
  reason: str = ''    # why it came out so, when the outcome alone does not say (inconclusive)
  kind: str = PAPER   # PAPER | HYPOTHESIS | GOAL

  def __post_init__(self):
    if self.verdict not in OUTCOMES:
      raise ValueError(f'verdict={self.verdict!r} is invalid; allowed values: {", ".join(OUTCOMES)}')
    if self.kind not in KINDS:
      raise ValueError(f'kind={self.kind!r} is invalid; allowed values: {", ".join(KINDS)}')

  def __str__(self) -> str:
    return self.verdict + (f': {self.reason}' if self.reason else '')

  @property
  def marked(self) -> str:
    """The outcome as a table shows it (refuted bold, inconclusive italic), with its reason."""
    return MARKS[self.verdict] + (f': {self.reason}' if self.reason else '')


def decide(sign: int, *, better: int = 1) -> str:
  """An outcome from an interval's sign: reproduced when it is ``better``, refuted when it is the
  opposite, inconclusive when the interval holds 0."""
  return INCONCLUSIVE if sign == 0 else REPRODUCED if sign == better else REFUTED


def tally(verdicts) -> str:
  """``'2 reproduced, 1 refuted, 3 inconclusive'``."""
  return ', '.join(f'{sum(v.verdict == o for v in verdicts)} {o}' for o in OUTCOMES)
