"""Model → Share on the Hub…: sign in (the token goes to the system keyring, never to the
settings), see exactly which files and card would be uploaded, then upload on the engine
worker (engine.tune.hub). Offline, the engine's one sentence says the folder is ready to push
later, in the UI language, with the `tingxie-cli push` that does it. The license and the
domain n-gram of the training transcripts are the CLI's --license and --with-domain-lm."""

from __future__ import annotations

from contextlib import suppress

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import error_text
from ..i18n import tr
from ..worker import WorkerHandle
from . import strings as _strings  # noqa: F401  (registers the strings)
from .form import PathRow, StatusLine

__all__ = ["ShareDialog"]


class ShareDialog(QDialog):
    def __init__(self, handle: WorkerHandle, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.handle = handle
        self._plan = None  # the plan shown; Upload sends exactly it
        self.setWindowTitle(tr("share.title"))
        self.model = PathRow(model)
        self.repo = QLineEdit()
        self.repo.setPlaceholderText("owner/name")
        self.private = QCheckBox(tr("share.private"))
        self.adapter = QCheckBox(tr("share.adapter"))
        self.license = QLineEdit()
        self.license.setToolTip(tr("share.license_tip"))
        self.domain_lm = QCheckBox(tr("share.domain_lm"))
        self.domain_lm.setToolTip(tr("share.domain_lm_tip"))
        self._stated: str | None = None  # the license the engine uses when none is typed
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        sign_in = QPushButton(tr("share.sign_in"))
        sign_in.clicked.connect(self.sign_in)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token, 1)
        token_row.addWidget(sign_in)
        self.plan_button = QPushButton(tr("share.show_plan"))
        self.plan_button.clicked.connect(self.show_plan)
        self.upload_button = QPushButton(tr("share.upload"))
        self.upload_button.clicked.connect(self.upload)
        self._allow_upload(False)
        self.status = StatusLine(self.plan_button)
        self.plan_view = QPlainTextEdit()
        self.plan_view.setReadOnly(True)
        self._form = form = QFormLayout()
        form.addRow(tr("share.model"), self.model)
        form.addRow(tr("share.repo"), self.repo)
        form.addRow("", self.private)
        form.addRow("", self.adapter)
        form.addRow(tr("share.license"), self.license)
        form.addRow("", self.domain_lm)
        form.addRow(tr("share.token"), token_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.plan_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.upload_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.plan_view, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._follow_folder()
        self.model.edit.textChanged.connect(self._follow_folder)
        self.adapter.toggled.connect(self._follow_folder)
        for edit in (self.model.edit, self.repo, self.license):
            edit.textChanged.connect(self._forget_plan)
        for box in (self.private, self.adapter, self.domain_lm):
            box.toggled.connect(self._forget_plan)
        handle.worker.push_done.connect(self._done)
        handle.worker.push_failed.connect(self._failed)

    def sign_in(self) -> None:
        """Store the typed token in the system keyring, where `resolve_token` finds it."""
        import keyring
        from keyring.errors import KeyringError

        from engine.tune.hub import KEYRING_SERVICE, KEYRING_USER

        token = self.token.text().strip()
        if not token:
            return
        try:
            keyring.set_password(KEYRING_SERVICE, KEYRING_USER, token)
        except (KeyringError, RuntimeError) as e:
            self.status.finished(tr("share.keyring_failed", detail=type(e).__name__))
            return
        finally:
            self.token.clear()  # the token lives in the keyring only, not in this widget
        self.status.finished(tr("share.signed_in"))

    def show_plan(self) -> None:
        """The files and card that would be uploaded (a folder listing: cheap, UI thread)."""
        from engine.tune.hub import HubError, plan_upload

        try:
            plan = plan_upload(
                self.model.text(),
                self.repo.text().strip(),
                private=self.private.isChecked(),
                adapter=self.adapter.isChecked(),
                license=self._license(),
                domain_lm=self.domain_lm.isChecked(),
            )
        except HubError as e:
            self._forget_plan()
            self.status.finished(error_text(e))
            return
        head = tr("share.plan", count=len(plan.files) + 1, repo_id=plan.repo_id, folder=plan.folder)
        rewritten, note = dict(plan.rewritten), tr("share.rewritten")
        files = "\n".join(
            f"  {rel} {note}" if rel in rewritten else f"  {rel}"
            for rel in (*plan.files, "README.md")
        )
        if plan.left_out:
            files += "\n" + "\n".join([tr("share.left_out"), *(f"  {r}" for r in plan.left_out)])
        self.plan_view.setPlainText(f"{head}\n{files}\n\nREADME.md:\n{plan.card}")
        self.status.finished("")
        self._plan = plan
        self._allow_upload(True)

    def upload(self) -> None:
        if self._plan is None:
            return
        self._allow_upload(False, tr("share.upload_busy", repo_id=self._plan.repo_id))
        self.status.busy(tr("share.uploading", repo_id=self._plan.repo_id))
        self.handle.push_model.emit(self._plan)

    def _follow_folder(self) -> None:
        """Show what the engine would do for the folder chosen: its stated license, kept in
        the field unless the user typed another, and the domain n-gram's box, off for each
        folder (sharing the training text is asked again) and shown only where there is one."""
        from engine.tune.hub import HubError, ShareDefaults, share_defaults

        defaults = ShareDefaults(None, False)
        if self.model.text():
            with suppress(HubError):  # no adapter there: Show says so
                defaults = share_defaults(self.model.text(), adapter=self.adapter.isChecked())
        if self.license.text().strip() == (self._stated or ""):
            self.license.setText(defaults.license or "")
        self.license.setPlaceholderText(defaults.license or tr("share.license_unknown"))
        self._stated = defaults.license
        self.domain_lm.setChecked(False)
        self._form.setRowVisible(self.domain_lm, defaults.has_domain_lm)  # no empty row left

    def _license(self) -> str | None:
        """The license typed, as --license; None (the CLI without it) when it is the stated
        one or empty."""
        typed = self.license.text().strip()
        return typed if typed and typed != self._stated else None

    def _forget_plan(self) -> None:
        self._plan = None
        self._allow_upload(False)

    def _allow_upload(self, allowed: bool, why: str = "") -> None:
        """Upload on or off; off, its tooltip says why and what turns it on (by default:
        the plan is not shown, or no longer what the form says)."""
        show = tr("share.show_plan")
        self.upload_button.setEnabled(allowed)
        self.upload_button.setToolTip(
            "" if allowed else why or tr("share.upload_needs_plan", show=show)
        )

    def _done(self, url: str) -> None:
        self.status.finished(tr("share.done", url=url))
        self._allow_upload(False, tr("share.upload_again", show=tr("share.show_plan")))

    def _failed(self, error: object) -> None:
        text = tr("share.failed", message=error_text(error))
        if getattr(error, "code", None) == "hub.offline":  # the command that uploads it later
            text += "\n" + tr("share.push_later", command=error.params["command"])
        self.status.finished(text)
        self._allow_upload(self._plan is not None)
