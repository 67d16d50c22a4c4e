"""UI strings of the review mode and the library, added to the app's table (`app.i18n`)."""

from __future__ import annotations

from ..i18n import STRINGS, tr

__all__ = ["REVIEW_STRINGS", "format_duration"]

# key -> (English, Simplified Chinese), as in app.i18n.STRINGS.
REVIEW_STRINGS: dict[str, tuple[str, str]] = {
    "page.review": ("Review", "校对"),
    "page.library": ("Library", "转写库"),
    "review.none_open": (
        "Open a transcript from the library, or finish a recording or file.",
        "请从转写库打开一份转写，或完成一次录音或文件转写。",
    ),
    # the tooltip of the review's buttons, greyed out while no transcript is open
    "review.open_first": (
        "Open a transcript on the Library page first.",
        "请先在“转写库”页打开一份转写。",
    ),
    "review.span": (
        "Doubtful {index}/{count}: “{text}” ({confidence:.0%})",
        "存疑 {index}/{count}：“{text}”（{confidence:.0%}）",
    ),
    "review.done": ("No doubtful text left.", "没有存疑的文字了。"),
    # a length of time (app.review.strings.format_duration), in whole seconds, minutes, hours
    "duration.seconds": ("{seconds} s", "{seconds} 秒"),
    "duration.minutes": ("{minutes} min {seconds:02d} s", "{minutes} 分 {seconds:02d} 秒"),
    "duration.hours": ("{hours} h {minutes:02d} min", "{hours} 小时 {minutes:02d} 分"),
    "review.progress": (
        "{count} doubtful left · about {time} to review",
        "剩余 {count} 处存疑 · 约需 {time}",
    ),
    "review.alternatives": ("Alternatives: {items}", "候选：{items}"),
    # the review page's player: nothing could be played ({detail}: PortAudio's reason)
    "player.no_output": (
        "no audio output ({detail}); choose an output device in the system's sound settings, "
        "or connect speakers or headphones",
        "没有音频输出（{detail}）；请在系统的声音设置中选择输出设备，或连接扬声器或耳机",
    ),
    # opening another transcript while fixes are typed in the review's fix box, not entered
    # ({fixes}: review.pending_fix.one for each span typed over, joined by .sep)
    "review.pending_fix.title": ("Fix not entered", "修改尚未确认"),
    "review.pending_fix": (
        # asked before another transcript opens, this one closes, or the app quits
        "You typed {fixes} but did not press Enter. Apply (each fix is saved) or discard?",
        "您输入了{fixes}，但还没有按回车。要应用这些修改（随即保存），还是放弃？",
    ),
    "review.pending_fix.one": ("“{typed}” over “{text}”", "“{typed}”（原为“{text}”）"),
    "review.pending_fix.sep": (", ", "、"),
    # Alt+digit while a fix is typed over the span, not entered
    "review.pending_fix.pick": (
        "You typed {fixes} but did not press Enter. Apply that fix instead of choice {n} "
        "“{choice}”, or discard it and take the choice?",
        "您输入了{fixes}，但还没有按回车。要应用这处修改而不选候选 {n}“{choice}”，"
        "还是放弃它、选用该候选？",
    ),
    # a stretch the user put in hand again (Check again), doubtful or not
    "review.span_again": ("Checking again: “{text}”", "重新校对：“{text}”"),
    "review.check_again_how": (
        "Select characters in the text (or click one), then press {keys} to check them again.",
        "请先在文本中选中文字（或点击一个字），再按 {keys} 重新校对。",
    ),
    # Check again over a selection running into the next paragraph: only its first part
    "review.check_again_clipped": (
        "Only “{text}” is in hand: Check again takes one paragraph at a time. To check the "
        "rest, select it in the next paragraph and press {keys}.",
        "只有“{text}”在校对中：重新校对一次只取一个段落。要校对其余文字，"
        "请在下一段中选中它们，再按 {keys}。",
    ),
    # the Play button's tooltip, greyed out: the transcript was stored without its recording
    "review.no_recording": (
        "No recording is stored with this transcript, so there is nothing to play: review it "
        "by reading, or transcribe its audio file again to hear it.",
        "这篇转写没有保存录音，无法播放：可以只看文字校对，或重新转写它的音频文件以便试听。",
    ),
    "review.no_alternatives": ("No alternatives", "没有候选"),
    "review.fix_placeholder": (
        "Type the right text and press Enter (unchanged: accept)",
        "输入正确的文字后按回车（不改动即为确认）",
    ),
    "review.order": ("Order", "顺序"),
    "review.order.risk": ("Lowest confidence first", "置信度最低优先"),
    "review.order.time": ("In time order", "按时间顺序"),
    "review.margin": ("Context", "前后文"),
    "review.speed": ("Speed", "语速"),
    "review.script": ("Script", "字形"),
    "review.margin_unit": (" s", " 秒"),  # the Context box's unit: seconds of audio either side
    "review.fix_name": ("Right text for the span", "这一处的正确文字"),  # the fix box, named
    "review.script.original": ("As stored", "原样"),
    "review.script.simplified": ("Simplified", "简体"),
    "review.script.traditional": ("Traditional", "繁体"),
    "review.script.taiwan": ("Traditional (Taiwan)", "繁体（台湾）"),
    "review.script.hongkong": ("Traditional (Hong Kong)", "繁体（香港）"),
    "review.autoplay": ("Play each span", "自动播放"),
    "action.previous_span": ("Previous", "上一处"),
    "action.next_span": ("Next", "下一处"),
    "action.play_span": ("Play", "播放"),
    "action.accept_span": ("Accept", "确认"),
    "action.fix_span": ("Fix", "改正"),
    "action.check_again": ("Check again", "重新校对"),
    "action.undo": ("Undo", "撤销"),
    "action.redo": ("Redo", "重做"),
    "action.history": ("History…", "历史…"),
    "history.pick": ("Return the transcript to:", "将转写恢复到："),
    "history.original": ("0 · the model's output", "0 · 模型输出"),
    # one decision of History… ({kind}: history.kind.*; {undone}: history.undone or "")
    "history.entry": (
        "{seq} · {kind}: “{old}” → “{text}”{undone}",
        "{seq} · {kind}：“{old}”→“{text}”{undone}",
    ),
    "history.entry_same": ("{seq} · {kind}: “{old}”{undone}", "{seq} · {kind}：“{old}”{undone}"),
    "history.entry_delete": (
        "{seq} · {kind}: deleted “{old}”{undone}",
        "{seq} · {kind}：删除“{old}”{undone}",
    ),
    "history.kind.fix": ("Fix", "改正"),
    "history.kind.accept": ("Accept", "确认"),
    "history.kind.alternative": ("Alternative", "选用候选"),
    "history.kind.replace": ("Fix elsewhere", "其余各处改正"),
    "history.undone": (" (undone)", "（已撤销）"),
    "undo.revert_to": ("Return to edit {head}", "恢复到第 {head} 处修改"),
    "action.export": ("Export…", "导出…"),
    "action.copy": ("Copy text", "复制文字"),
    "action.make_dataset": ("Make training set…", "生成训练集…"),
    "undo.accept": ("Accept “{text}”", "确认“{text}”"),
    "undo.fix": ("Fix “{old}” → “{text}”", "改正“{old}”→“{text}”"),
    "undo.alternative": ("Pick “{text}”", "选用“{text}”"),
    # one place "fix all occurrences" changed: {n} of the {count} it changed, each one Undo
    "undo.replace": (
        "Fix “{old}” → “{text}” elsewhere ({n}/{count})",
        "其余各处改正“{old}”→“{text}”（第 {n}/{count} 处）",
    ),
    "review.fix_all": (
        "Also change {count} other occurrence(s) of “{old}” to “{text}”",
        "其余 {count} 处“{old}”也改为“{text}”",
    ),
    "review.fixed_all": (
        "Fixed {count} other occurrence(s) of “{old}” → “{text}” (Undo takes back one place "
        "at a time, “Undo all” every place)",
        "已将其余 {count} 处“{old}”改为“{text}”（撤销一次恢复一处，“撤销全部”恢复所有各处）",
    ),
    "review.fix_all_delete": (
        "Also delete {count} other occurrence(s) of “{old}”",
        "其余 {count} 处“{old}”也删除",
    ),
    "review.fixed_all_delete": (
        "Deleted {count} other occurrence(s) of “{old}” (Undo takes back one place at a time, "
        "“Undo all” every place)",
        "已删除其余 {count} 处“{old}”（撤销一次恢复一处，“撤销全部”恢复所有各处）",
    ),
    # the fix-all button right after its changes: takes them all back at once
    "review.undo_all": ("Undo all {count} changes", "撤销全部 {count} 处修改"),
    "review.undone_all": (
        "Took back the {count} change(s) of “{old}” → “{text}”",
        "已撤销其余 {count} 处“{old}”→“{text}”的修改",
    ),
    "review.undone_all_delete": (
        "Brought back the {count} deleted occurrence(s) of “{old}”",
        "已恢复删除的其余 {count} 处“{old}”",
    ),
    "undo.revert": ("Revert to model output", "恢复为模型输出"),
    "review.unsaved": ("Not saved yet: {message}", "尚未保存：{message}"),
    "review.saved": ("All changes saved", "所有修改已保存"),
    "review.close_unsaved": (
        "Changes on the Review page could not be saved (see its status line). Close anyway and "
        "lose them? Cancel, then Export, keeps a copy.",
        "校对页的修改未能保存（见其状态栏）。仍要关闭并丢弃这些修改吗？可先取消，再用“导出”保存一份。",
    ),
    "review.unsaved_kept": (
        "This transcript stays open: its changes are not saved yet ({message}). Free space or "
        "fix the folder, then try again; Export saves a copy now.",
        "此转写保持打开：修改尚未保存（{message}）。请腾出空间或修复文件夹后重试；“导出”可立即另存一份。",
    ),
    "review.copied": ("Copied", "已复制"),
    "review.exported": ("Exported {path}", "已导出 {path}"),
    "review.play_failed": ("Cannot play: {message}", "无法播放：{message}"),
    "dataset.name": ("Name of the training set:", "训练集名称："),
    "dataset.tune_now": ("Tune now", "立即微调"),
    "dataset.replace": (
        "There is already a training set named “{name}”. Replace it with one made from this "
        "transcript? Its clips will be deleted.",
        "已有名为“{name}”的训练集。要用这份转写生成的训练集替换它吗？它原有的音频片段将被删除。",
    ),
    "dataset.building": ("Building training set “{name}”…", "正在生成训练集“{name}”…"),
    "dataset.summary": (
        "Training set “{name}”: {examples} clips, {hours:.2f} h, {corrections} corrections, "
        "{accepted} accepted; characters new to the model: {new}.",
        "训练集“{name}”：{examples} 段，{hours:.2f} 小时，{corrections} 处改正，{accepted} 处确认；"
        "模型没有的字：{new}。",
    ),
    "dataset.doubtful": (
        "{trimmed} segment(s) went in only as their checked stretches and {skipped} were left "
        "out: they still hold text nobody checked, doubtful spans or places changed by Fix all "
        "occurrences. To use them whole, accept or fix the doubtful spans, check the changed "
        "places again (select them, Ctrl+Shift+R, accept), and make the set again.",
        "{trimmed} 个片段只收入了已核对的部分，{skipped} 个片段未收入：其中仍有未核对的文字"
        "（存疑之处，或“全部改正”改动的地方）。要整段收入，请确认或改正存疑之处，"
        "重新校对改动的地方（选中后按 Ctrl+Shift+R，再确认），然后重新生成训练集。",
    ),
    "library.search": ("Search transcripts…", "搜索转写…"),
    "library.title": ("Title", "标题"),
    "library.date": ("Changed", "修改时间"),
    "library.duration": ("Length", "时长"),
    "library.edits": ("Edits", "修改次数"),
    "library.text": ("Text", "文字"),
    "library.open": ("Open", "打开"),
    "library.empty": (
        "No transcripts yet: every file you transcribe and every recording you finish is kept "
        "here, to search, review and reopen.",
        "还没有转写。转写的每个文件、完成的每段录音都会保存在这里，可搜索、校对、再次打开。",
    ),
    "library.cut": (
        "Showing the newest {count} transcripts: search to find older ones.",
        "只列出最新的 {count} 篇转写；要找更早的，请搜索。",
    ),
    "library.no_match": ("No transcript contains “{text}”.", "没有包含“{text}”的转写。"),
    # names a screen reader gives the Library page's search box and its table
    "library.search_name": ("Search transcripts", "搜索转写"),
    "library.table_name": ("Transcripts", "转写列表"),
    # the table's keys, told by a screen reader (its accessible description)
    "library.keys": (
        "Enter opens the transcript, F2 renames it, Delete deletes it; click a column heading "
        "to sort by that column.",
        "回车打开转写，F2 重命名，Delete 删除；点击列标题可按该列排序。",
    ),
    "library.sort_tip": (
        "Click to sort by this column; click again for the reverse order",
        "点击按此列排序；再次点击则倒序",
    ),
    # the table's context menu (its keys show beside each item)
    "library.rename": ("Rename…", "重命名…"),
    "library.delete": ("Delete…", "删除…"),
    "library.rename_title": ("Rename transcript", "重命名转写"),
    "library.rename_label": ("New title for “{title}”:", "“{title}”的新标题："),
    "library.rename_empty": (
        "A title cannot be empty or only spaces: the transcript keeps its title.",
        "标题不能为空，也不能只有空格：这篇转写保留原标题。",
    ),
    "library.delete_title": ("Delete from the library", "从转写库删除"),
    "library.delete_one": (
        "Delete “{title}” from the library? Its text and edits are deleted with it; the audio "
        "file itself is kept.",
        "要从转写库删除“{title}”吗？它的文字和修改会一并删除；音频文件本身会保留。",
    ),
    "library.delete_many": (
        "Delete these {count} transcripts from the library?\n\n{titles}\n\nTheir text and "
        "edits are deleted with them; the audio files themselves are kept.",
        "要从转写库删除这 {count} 篇转写吗？\n\n{titles}\n\n它们的文字和修改会一并删除；"
        "音频文件本身会保留。",
    ),
    "library.more": ("and {count} more", "另外还有 {count} 篇"),
    # a delete the library could not do ({message}: why, e.g. a read-only disk)
    "library.not_deleted": (
        "Not deleted: {message}. Still in the library:\n{titles}",
        "未能删除：{message}。仍在转写库中的有：\n{titles}",
    ),
    "store.failed": (
        "The transcript library cannot be opened: {message}",
        "无法打开转写库：{message}",
    ),
}

STRINGS.update(REVIEW_STRINGS)


def format_duration(seconds: float) -> str:
    """A length of time in the UI language, to the second under an hour: '45 s', '3 min 05 s',
    '1 h 02 min' ('45 秒', '3 分 05 秒', '1 小时 02 分'). For the review's time left, the Tune
    estimates and the library's Length column."""
    seconds = round(seconds)
    if seconds < 60:
        return tr("duration.seconds", seconds=seconds)
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return tr("duration.minutes", minutes=minutes, seconds=secs)
    hours, minutes = divmod(minutes, 60)
    return tr("duration.hours", hours=hours, minutes=minutes)
