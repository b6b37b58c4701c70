"""The data package's errors, each reported by the commands in one line
(lstm_unsup/cli.py): "Bad data: ..." and "Data unavailable: ..."."""


class DataError(ValueError):
  """A data file or array is malformed; the message names it and says what
  was expected."""


class DataUnavailableError(RuntimeError):
  """The requested data is not on this machine and cannot be fetched."""
