"""The base of the evaluation results: scores, a verdict, ``passed``, repr, HTML.

Every result of :mod:`mne_freqmask.evaluation` that states a verdict derives
from :class:`EvaluationResult`: its scores as a :class:`pandas.DataFrame`
(:meth:`~EvaluationResult.to_data_frame`), its verdict in one line
(``verdict``), whether it passed (``passed``), a ``repr`` and an HTML table
for reports (:meth:`~EvaluationResult.to_html`, shown by Jupyter and
:meth:`mne.Report.add_html`). A subclass names the attribute that holds its
table (``_table``) and gives ``verdict`` and ``passed`` (fields or
properties); its other attributes are its own.
"""

from html import escape

import pandas as pd


class EvaluationResult:
    """Base of the evaluation results (a mixin of the result dataclasses).

    Subclasses provide ``verdict`` (str, one line) and ``passed`` (bool),
    as dataclass fields or properties, and set ``_table`` to the name of the
    attribute holding their scores (a DataFrame, a Series or None).
    """

    #: name of the attribute holding the scores
    _table = "scores"

    def to_data_frame(self):
        """Return the scores as a table.

        Returns
        -------
        df : pandas.DataFrame
            The result's scores (a Series becomes one row; none, an empty
            table).
        """
        table = getattr(self, self._table)
        if table is None:
            return pd.DataFrame()
        if isinstance(table, pd.Series):
            return table.to_frame().T
        return table

    def __repr__(self):
        return f"<{type(self).__name__} | {self.verdict}>"

    def to_html(self):
        """An HTML view of the result (e.g. for :meth:`mne.Report.add_html`).

        Returns
        -------
        html : str
            The verdict, whether it passed, and the scores' table.
        """
        state = "passed" if self.passed else "not passed"
        return (
            f"<p><b>{escape(type(self).__name__)}</b> ({state}): "
            f"{escape(str(self.verdict))}</p>" + self.to_data_frame().to_html()
        )

    def _repr_html_(self):
        return self.to_html()
