"""The viewer's side of the model lab: what it offers, what it asks, what was changed.

Plain data, no display: `LabView` reads the `LabOffered` and `ModelChanged` messages
of `pyasg.viewer.protocol` (the training side is `pyasg.train.lab.ModelLab`), turns
what the user picked into a `Change` request (`request`, the JSON text the viewer
puts on its queue back to training), and keeps the list of changes with the steps
they applied at: `markers`, the vertical lines of the loss chart, and `history`
(refusals too). The app (`pyasg.viewer.app`) draws it.

>>> from pyasg.events import LabOffered, ModelChanged
>>> lab = LabView()
>>> lab.handle(LabOffered(({"what": "activation", "path": "1", "current": "relu",
...                         "choices": ["gelu", "relu", "tanh"]},)))
True
>>> text = lab.request("activation", "1", "gelu")
>>> lab.handle(ModelChanged(4, "activation", "1", "gelu", "relu"))
True
>>> lab.markers
[(4, 'activation 1: relu → gelu')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyasg.errors import PyasgError, shown
from pyasg.events import LabOffered, ModelChanged
from pyasg.viewer.protocol import encode_change


class LabRequestError(PyasgError):
    """The viewer was asked for a change the training process does not offer, or with a
    value that does not fit it."""


def describe(what: str, path: str, value: object, before: object = None) -> str:
    """A change in one line: `activation 1: relu → gelu`, `lr: 0.01 → 0.001`.

    >>> describe("insert_dropout", "0", 0.2), describe("lr", "", 0.001, 0.01)
    ('insert_dropout 0: 0.2', 'lr: 0.01 → 0.001')
    """
    where = f"{what} {path}" if path else what
    if before is None:
        return f"{where}: {value}" if value is not None else where
    return f"{where}: {before} → {value}" if value is not None else f"{where}: {before}"


@dataclass
class LabView:
    """The lab panel's state (see the module docstring)."""

    offers: list[dict[str, Any]] = field(default_factory=list)
    history: list[ModelChanged] = field(default_factory=list)
    markers: list[tuple[int, str]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    def handle(self, message: object) -> bool:
        """Take a `LabOffered` or `ModelChanged`; False for any other message."""
        if isinstance(message, LabOffered):
            self.offers = [dict(o) for o in message.offers]
            return True
        if isinstance(message, ModelChanged):
            self.history.append(message)
            if message.error is None:
                self.markers.append((message.step, describe(message.what, message.path,
                                                            message.value, message.before)))
            return True
        return False

    def offer(self, what: str, path: str) -> dict[str, Any]:
        """The offer for (`what`, `path`); LabRequestError when there is none."""
        for o in self.offers:
            if o["what"] == what and o["path"] == path:
                return o
        places = ", ".join(describe(o["what"], o["path"], None) for o in self.offers[:12])
        raise LabRequestError(f"model lab: {what} at {path!r} is not offered for this model; "
                              f"offered: {places or 'nothing (no ModelLab is training)'}")

    def parse(self, what: str, path: str, text: object) -> str | float | None:
        """The value typed or picked for an offer: one of its choices (a name), or a
        number (a rate, a learning rate), or None for a change that takes none.

        >>> lab = LabView([{"what": "lr", "path": "", "current": 0.1, "choices": "(0, inf)"}])
        >>> lab.parse("lr", "", "3e-4")
        0.0003
        >>> lab.parse("lr", "", "fast")
        Traceback (most recent call last):
        ...
        pyasg.viewer.lab.LabRequestError: model lab: lr needs a number in (0, inf), got 'fast'...
        """
        choices = self.offer(what, path)["choices"]
        if choices is None:
            return None
        if isinstance(choices, list):
            if text not in choices:
                raise LabRequestError(f"model lab: {what} at {path!r} takes one of "
                                      f"{', '.join(choices)}, got {shown(text)}")
            return str(text)
        try:
            return float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise LabRequestError(f"model lab: {describe(what, path, None)} needs a number "
                                  f"in {choices}, got {shown(text)}") from None

    def request(self, what: str, path: str, value: object) -> str:
        """The `Change` message for an offered change (checked against the offer)."""
        text = encode_change(what, path, self.parse(what, path, value))
        self.sent.append(text)
        return text
