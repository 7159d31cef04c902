"""The run log: what a run has generated, durably, a round at a time (see log.py).

RunLog          one run directory: open, append whole rounds, close
read_log        the records of a run directory's complete rounds, streamed
summarize       the counts of one pass over records (`RunSummary`)
stored_options  the options a run folder was made with
History         what the log says so far, for generation to go on from
"""

from self_instruct.runlog.log import RunLog, read_log
from self_instruct.runlog.options import stored_options
from self_instruct.runlog.replay import History
from self_instruct.runlog.summary import summarize

__all__ = ["History", "RunLog", "read_log", "stored_options", "summarize"]
