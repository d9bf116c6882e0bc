"""The report's human "Turing test" (section VI.B.1), as a poll anyone can run.

- `storage`: the poll folder (an SQLite database, the images under random names, the cookie
  secret), its participants, their balanced trials and their answers.
- `build`: photos -> pairs, the original and the colorization rendered through the same
  Lab -> 8-bit step from the same lightness, so that only their colours tell them apart.
- `statistics`: the confusion matrix, the exclusions a reviewer expects, Wilson and
  participant-bootstrap intervals, the tables and CSV files.
- `routes`: the participants' and the organiser's pages (FastAPI).

Taking part and counting results need only the standard library, NumPy and Pillow; building a
poll colorizes photos with a trained model (TensorFlow, loaded only then). The package may import
`pix2color.photos`, `pix2color.outputs`, `pix2color.training.run_folder`, `pix2color.training.plots` and
`pix2color.web.responses`; nothing outside it imports more than its public names below.
"""

from pix2color.poll.statistics import Results, Rules, results
from pix2color.poll.storage import PROTOCOLS, AnswerError, NotShownNow, Poll, PollError, PollImages, write_poll

__all__ = ["PROTOCOLS", "AnswerError", "NotShownNow", "Poll", "PollError", "PollImages", "Results", "Rules",
           "results", "write_poll"]
