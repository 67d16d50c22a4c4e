"""Errors a person reads: a stable code, its parameters, and an English one-line message.

`str(error)` is the English message the CLI prints and the log records. A front end in another
language looks `error.code` up in its own table and formats `error.params` into it (the desktop
app's Chinese is in app/errors.py); the code stays the same when the English wording is
improved. Every English template is in `MESSAGES`, one table, so a translator sees everything
the engine can say and a test can check that each code has its translations.
"""

from __future__ import annotations

__all__ = ["MESSAGES", "TingxieError"]

_REDO = "check that it plays in a media player, or convert it to WAV or FLAC"
_GET_MODEL = (
    "Choose a local model folder, or on a connected machine run `hf download {source}` and copy "
    "the models--… folder it adds to its Hugging Face cache into {cache}, the cache read here"
)
_GET_WHISPER = (
    "Choose a Whisper folder in CTranslate2 format (packaging/fetch-whisper-base.py assembles "
    "Whisper-base into .cache/models/whisper-base), or on a connected machine run "
    "`hf download {source}` and copy the models--… folder it adds to its Hugging Face cache "
    "into {cache}, the cache read here"
)
_MICROPHONE_LOST = "the recording so far is saved in {path} — reconnect it or choose another device"

# code -> English template (str.format names are the parameters every front end gets).
MESSAGES: dict[str, str] = {
    # -- model loading (engine.model, engine.registry)
    "model.no_cuda": "device=cuda was requested but no CUDA GPU is available; use cpu",
    "model.sdpa_unsupported": "attention=sdpa is not implemented for {model_type}; use eager",
    "model.folder_missing": (
        "model folder {path} does not exist; choose a folder in Hugging Face layout"
    ),
    "model.folder_incomplete": (
        "model folder {path} is missing {missing}; copy the complete checkpoint folder "
        "(as saved by save_pretrained)"
    ),
    "model.pickle_only": (
        "model folder {path} has only pickle weights (pytorch_model.bin), which can run code "
        "when loaded; convert them to model.safetensors, or allow pickle weights "
        "(--allow-pickle) if you trust where the folder came from"
    ),
    "model.hub_pickle_only": (
        "model {source!r} has only pickle weights (pytorch_model.bin) on the Hugging Face Hub, "
        "which can run code when loaded, so Tingxie neither downloads nor loads them; if you "
        "trust its author, allow pickle weights (--allow-pickle) to have them downloaded and "
        "loaded, or choose a copy of the model with model.safetensors weights"
    ),
    "model.onnx_only": (
        "model folder {path} is an ONNX export (model.onnx, no PyTorch weights): run it on ONNX "
        "Runtime (the auto or onnx backend), or choose the PyTorch model it was exported from"
    ),
    "model.no_onnx": (
        "model folder {path} has no model.onnx; export one with `tingxie-cli export MODEL OUT "
        "--format onnx` (add `--quantize int8` to need about half the memory) and choose OUT as "
        "the model, or use the torch backend"
    ),
    "model.is_file": "model {source} is a file; choose a checkpoint folder or a Hub id",
    "model.file_in_folder": (
        "model {source} is a file in the model folder {folder}; choose {folder} itself"
    ),
    "model.invalid_id": (
        "model {source!r} is neither an existing folder nor a valid Hub id (owner/name)"
    ),
    "model.web_address": (
        "model {source} is a web address but no Hugging Face model's page; give the model's Hub "
        "id (owner/name, as in https://huggingface.co/owner/name) or a local folder"
    ),
    "model.not_cached": "model {source!r} is not in the Hugging Face cache ({detail}). "
    + _GET_MODEL,
    "model.download_failed": "model {source!r} could not be downloaded ({detail}). " + _GET_MODEL,
    "model.bad_json": "{path} is not readable JSON ({detail}); re-copy the checkpoint",
    "model.bad_vocab": (
        "{path} maps {token!r} to {found!r} where a whole-number id belongs; re-copy the "
        "checkpoint (as saved by save_pretrained)"
    ),
    "model.json_not_object": (
        "{path} holds {found} where a JSON object ({{…}}) belongs; re-copy the checkpoint "
        "(as saved by save_pretrained)"
    ),
    "model.bad_weights": (
        "{path} is damaged or incomplete ({detail}); download or copy the model again"
    ),
    "model.bad_onnx": (
        "{path} is not a model ONNX Runtime can read ({detail}); copy it again, or export it "
        "again with `tingxie-cli export MODEL OUT --format onnx`"
    ),
    "model.parity_failed": (
        "{path} is an ONNX export that failed its parity check ({detail}): it transcribes "
        "unlike the model it was exported from, so its text and confidences are not that "
        "model's; export it again, or use the model it came from"
    ),
    "model.no_ctc_head": (
        "model folder {path} has no CTC head ({head} is missing from its weights): it is a "
        "pretrained base checkpoint; fine-tune it for recognition first (Tune), or choose a "
        "CTC model"
    ),
    "model.unsupported_type": (
        "model type {model_type!r} is not a supported CTC family; Tingxie runs {supported} "
        "checkpoints with a CTC head"
    ),
    "model.unsupported_in_folder": "{path}: {error}",
    "model.load_failed": "model folder {path} could not be loaded: {detail}",
    "model.failed": "model {source!r} could not be loaded: {detail}",
    "model.vocab_mismatch": (
        "{path} does not fit the model's CTC output layer ({outputs} outputs, vocab_size in "
        "config.json): it gives {tokens} tokens, and ids {ids} are not each used once from 0 "
        "to {last}; re-copy vocab.json from the checkpoint the weights belong to"
    ),
    "model.tokenizer_mismatch": (
        "{path} (tokenizer {name}) does not read the vocab.json beside it as it is: {count} of "
        "its {tokens} tokens get other ids or none; re-copy tokenizer_config.json from the "
        "checkpoint the weights belong to"
    ),
    "model.head_mismatch": (
        "{config} gives vocab_size {vocab_size}, but the CTC head ({head}) in {weights} has "
        "{rows} outputs: the two come from different checkpoints; copy both from the same one"
    ),
    "model.bad_config": (
        "{path} holds a value of the wrong kind or length ({detail}); correct it, or re-copy "
        "config.json from the checkpoint (as saved by save_pretrained)"
    ),
    "model.bad_sampling_rate": (
        "{path}: sampling_rate is {value!r}, not a rate a speech model runs at; give a whole "
        "number of Hz from {low} to {high} (16000 for most models), or re-copy the file from "
        "the checkpoint (as saved by save_pretrained)"
    ),
    "model.adapter_only": (
        "{path} is a LoRA adapter (adapter_config.json) without the model it adapts; choose the "
        "tuning job's model/ folder, or export the job as a Hugging Face folder "
        "(`tingxie-cli export JOB OUT --format hf`) and choose OUT"
    ),
    "model.download_incomplete": (
        "the download of {source!r} stopped before it was complete ({missing} not yet in the "
        "Hugging Face cache); connect to the network and choose it again (the download resumes "
        "where it stopped), or run `hf download {source}`"
    ),
    "model.flash_unsupported": (
        "attention=flash_attention_2 is not implemented for {model_type} in transformers; use "
        "{instead} (or auto)"
    ),
    "model.vocab_no_mandarin": (
        "{path} holds one vocabulary per language ({count}: {languages}), none of them Mandarin "
        "(cmn…); set target_lang in tokenizer_config.json beside it to the language to "
        "transcribe, or choose a Mandarin model"
    ),
    "model.vocab_language_missing": (
        "{path} sets target_lang {language!r}, but vocab.json beside it has no vocabulary for "
        "it ({count} languages: {languages}); set target_lang to one of them, or re-copy the "
        "checkpoint (as saved by save_pretrained)"
    ),
    "model.adapter_missing": (
        "{path} holds one vocabulary per language and reads {language!r}, but not that "
        "language's MMS adapter ({missing}: its adapter layers and CTC head), so the weights' "
        "own head does not fit the vocabulary; copy {missing} from the model's Hub repository "
        "into {path} (on a connected machine: `hf download OWNER/NAME {missing}`), or set "
        "target_lang in tokenizer_config.json to the language the weights were tuned for"
    ),
    "model.no_blank": (
        "{path} gives the CTC head no blank: the blank is the pad token {token} (id {blank}; "
        "pad_token_id {pad_token_id} in config.json), none of the head's {outputs} outputs, so "
        "silence would be written as characters; set pad_token_id in config.json (or "
        "pad_token in tokenizer_config.json) to the blank's id, or re-copy vocab.json from the "
        "checkpoint the weights belong to"
    ),
    "model.pretrained_encoder": (
        "model folder {path} is a pretrained encoder, with no vocabulary (vocab.json) and no "
        "CTC head ({head}): it cannot transcribe, and Tingxie tunes only models that have a "
        "vocabulary; choose a CTC model fine-tuned for Mandarin (the default one, say) and tune "
        "that on your recordings (Tune, or `tingxie-cli tune`)"
    ),
    # -- a tuning job's output_dir and checkpoints (engine.tune.jobs, engine.tune.loop)
    "tune.output_in_use": (
        "output_dir {path} is in use by another tuning job (pid {pid}); wait for it to end or "
        "stop it, or choose another output_dir"
    ),
    "tune.output_unwritable": (
        "output_dir {path} is not writable ({detail}); choose another output_dir, or make this "
        "one writable (a stopped job resumes from a copy of its folder too)"
    ),
    "tune.output_full": (
        "output_dir {path}: no space left on its disk ({detail}); a tuning job needs room there "
        "for its checkpoints and the tuned model (at least twice the base model's size): free "
        "space, or choose another output_dir"
    ),
    "tune.resume_changed": (
        "{path}: its checkpoints were written with other settings ({changes}); set them back to "
        "resume, or use a new output_dir to start afresh with these"
    ),
    "tune.checkpoint_mismatch": (
        "{path} does not fit this job's model ({detail}): a setting that shapes it (model, "
        "method, lora_rank, freeze_layers, freeze_feature_encoder, extend_vocab) was changed "
        "since it was written; set it back, or use a new output_dir"
    ),
    "tune.checkpoint_damaged": (
        "{path} cannot be read ({detail}): it was cut short (a power cut, a full disk, a copy "
        "stopped midway) or is not a file Tingxie wrote; restore the job folder from a copy, or "
        "start afresh in a new output_dir"
    ),
    "tune.pickle_only": (
        "base model {path} has only pickle weights (pytorch_model.bin), which can run code "
        "when loaded; make a safetensors copy (tingxie-cli export MODEL OUT --allow-pickle) and "
        "tune from OUT, or, if you trust where the folder came from, set allow_pickle: true in "
        "the job's config (or --set allow_pickle=true)"
    ),
    "tune.nothing_to_resume": (
        "output_dir {path}: nothing to resume: no checkpoint in {checkpoints}; check output_dir, "
        "or run without --resume to start the job afresh"
    ),
    "tune.checkpoints_unreadable": (
        "{path}: no checkpoint there can be read to resume from: {damaged}; such files were cut "
        "short (a power cut, a full disk, a copy stopped midway) or not written by Tingxie; "
        "restore the job folder from a copy, or start afresh in a new output_dir"
    ),
    # -- a write that failed mid-run (engine.tune.cache.checkpoint_unwritten): a full disk apart
    # from a folder that became read-only, where freeing space would not help
    "tune.checkpoint_full": (
        "{path}: {what} could not be written ({detail}); the last complete checkpoint ({kept}) "
        "is kept; free some space, then resume the job"
    ),
    "tune.checkpoint_full_none": (
        "{path}: {what} could not be written ({detail}); no checkpoint was complete yet; free "
        "some space and start again"
    ),
    "tune.checkpoint_unwritable": (
        "{path}: {what} could not be written ({detail}): the folder is read-only or not yours "
        "to write; the last complete checkpoint ({kept}) is kept; make {path} writable and "
        "resume the job, or copy the folder to a writable place and resume the copy"
    ),
    "tune.checkpoint_unwritable_none": (
        "{path}: {what} could not be written ({detail}): the folder is read-only or not yours "
        "to write; no checkpoint was complete yet; make {path} writable, or choose another "
        "output_dir, then start again"
    ),
    # -- a job of several processes (accelerate launch)
    "tune.resume_not_shared": (
        "{path}: process {rank} finds {found} there to resume from, process 0 finds {main}: "
        "the machines of a job must see one output_dir; put it on a shared filesystem (or copy "
        "its checkpoints/ to the same path on each machine), then resume"
    ),
    "tune.whisper_one_process": (
        "a Whisper model is tuned in one process, not {processes}: run `tingxie-cli tune` "
        "without accelerate launch (several processes tune CTC models only)"
    ),
    # -- a tuning job's settings (engine.tune.config.SettingError)
    "tune.setting_whole_number": "{name}={value!r}: expected a whole number",
    "tune.setting_number": "{name}={value!r}: expected a number",
    "tune.setting_true_or_false": "{name}={value!r}: expected true or false",
    "tune.setting_text": "{name}={value!r}: expected text",
    "tune.setting_finite": "{name}={value!r}: must be a finite number",
    "tune.setting_at_least_one": "{name}={value}: must be at least 1",
    "tune.setting_not_negative": "{name}={value}: must be 0 or more",
    "tune.setting_positive": "{name}={value}: must be more than 0",
    "tune.setting_fraction": "{name}={value}: choose a value in [0, 1)",
    "tune.setting_choice": "{name}={value!r}: choose one of {choices}",
    "tune.setting_min_above_max": (
        "min_seconds={min_seconds} is above max_seconds={max_seconds}: every utterance would be "
        "skipped; lower min_seconds or raise max_seconds"
    ),
    "tune.setting_micro_batch": "{name}: must hold at least one second of audio",
    # -- Whisper models (engine.whisper)
    "model.whisper_not_cached": "Whisper model {source!r} is not in the Hugging Face cache "
    "({detail}). " + _GET_WHISPER,
    "model.whisper_download_failed": "Whisper model {source!r} could not be downloaded "
    "({detail}). " + _GET_WHISPER,
    "model.whisper_transformers": (
        "{path} is a Whisper checkpoint in transformers format; convert it for CTranslate2 "
        "(ct2-transformers-converter --model {path} --output_dir OUT --copy_files "
        "tokenizer.json preprocessor_config.json) and choose OUT"
    ),
    "model.whisper_incomplete": (
        "Whisper folder {path} is missing {missing}; copy the complete CTranslate2 folder "
        "(model.bin, config.json, tokenizer.json, vocabulary.*)"
    ),
    "model.whisper_load_failed": "Whisper folder {path} could not be loaded: {detail}",
    "model.precision_unsupported": (
        "precision {precision}: CTranslate2 cannot run Whisper in {compute_type} on this "
        "{device}; choose {choices} (--precision on the command line)"
    ),
    # -- sharing on the Hugging Face Hub (engine.tune.hub)
    "hub.lm_config_unreadable": (
        "{path} cannot be read ({detail}): it says whether lm/ holds a domain n-gram built from "
        "the training transcripts, which is left out unless asked for; repair it, or delete "
        "the lm/ folder from the model folder, then share again"
    ),
    "hub.bad_repo": (
        "repository {repo_id!r}: write it as owner/name (your user or organization, then the "
        "model's name)"
    ),
    "hub.no_folder": (
        "{path} does not exist; choose a model folder or a tuning job's output folder"
    ),
    "hub.no_adapter": (
        "{path} has no LoRA adapter (adapter/ or adapter_config.json); share the merged model "
        "without --adapter"
    ),
    "hub.no_weights": (
        "{path} has no safetensors or ONNX weights to share; export the model first "
        "(tingxie-cli export)"
    ),
    "hub.parity_failed": (
        "{path} is an ONNX export whose parity check FAILED (see its README.md): it does not "
        "transcribe like its source; export it again, or share the source model instead"
    ),
    "hub.no_token": (
        "no Hugging Face token: set HF_TOKEN, or sign in from the app (the token is kept in "
        "the system keyring); {folder} is ready to push"
    ),
    "hub.offline": (
        "the Hugging Face Hub cannot be reached; {folder} is ready to push later ({command})"
    ),
    "hub.refused": (
        "the Hub refused the upload to {repo_id} ({detail}); check that the token may write "
        "and the repository name"
    ),
    "hub.files_changed": (
        "{path} changed after the upload was planned: {missing} is no longer there; look at "
        "its files again, then upload"
    ),
    "hub.failed": "the upload to {repo_id} failed: {detail}",
    # -- reading audio (engine.audio); every message names the file first
    "audio.missing": "{path}: no such file; check the path and the file name",
    "audio.folder": "{path}: is a folder, not an audio file; choose a file inside it",
    "audio.not_a_file": "{path}: is not a regular file; choose an audio or video file",
    "audio.unrecognized": (
        "{path}: not audio or video Tingxie can read (by its content; extension: {suffix}); "
        "convert it to one of {supported}"
    ),
    "audio.permission": "{path}: permission denied; make the file readable by your user",
    "audio.empty": "{path}: the file is empty (0 bytes); record or export it again",
    "audio.no_samples": "{path}: contains no audio samples; record or export it again",
    "audio.video_without_audio": "{path}: a video with no audio track; choose a file with sound",
    "audio.no_audio_track": "{path}: has no audio track; choose a file with sound",
    "audio.codec": "{path}: unsupported audio codec '{codec}'; " + _REDO,
    "audio.unreadable_media": "{path}: not a readable media file ({detail}); " + _REDO,
    "audio.unreadable": "{path}: not a readable audio file ({detail}); " + _REDO,
    "audio.bad_header": (
        "{path}: not a readable audio file ({detail}: corrupt header or not audio); " + _REDO
    ),
    "audio.decode_stopped": (
        "{path}: decoding failed after {samples} samples ({detail}); " + _REDO
    ),
    "audio.undecodable": (
        "{path}: no audio could be decoded ({detail}): unsupported codec or corrupt data; " + _REDO
    ),
    "audio.seek_failed": "{path}: cannot go back to the start ({detail}); " + _REDO,
    "audio.span_after_end": (
        "{path}: span {start:.2f}-{end:.2f} s starts after the end of the audio "
        "({duration:.2f} s); choose a span inside the file"
    ),
    # -- playing audio (the app's review player)
    "audio.span_unreadable": (
        "{path}: this stretch could not be read ({detail}); play another span, or convert the "
        "file to WAV or FLAC and open it again"
    ),
    "audio.no_portaudio": (
        "the PortAudio library, which plays sound, is not installed; install the libportaudio2 "
        "package (make system-deps), then try again"
    ),
    # -- the microphone and recordings (engine.recorder)
    "microphone.query_failed": "the audio system could not be queried ({detail}); check it runs",
    "microphone.no_portaudio": (
        "the PortAudio library is not installed, so Tingxie cannot record; install the "
        "libportaudio2 package (make system-deps), then try again"
    ),
    "microphone.none": "no microphone found; connect one, or check the system's sound settings",
    "microphone.not_connected": ("microphone {device!r} is not connected; choose one of: {names}"),
    "microphone.refused": (
        "microphone {device!r} refused access ({detail}); allow this app to use the microphone "
        "and close other apps that hold it"
    ),
    "microphone.open_failed": (
        "microphone {device!r} could not be opened ({detail}); choose another device"
    ),
    "microphone.stalled": (
        "microphone {device!r} stopped delivering audio mid-recording; " + _MICROPHONE_LOST
    ),
    "microphone.disappeared": "microphone {device!r} disappeared mid-recording; "
    + _MICROPHONE_LOST,
    "recording.write_failed": (
        "recording could not be written to {path} ({detail}); what reached the disk is there; "
        "free some space on that disk, then record again"
    ),
    "recording.write_failed_kept": (
        "recording could not be written to {path} ({detail}); the first {seconds:.1f} s are "
        "saved there; free some space on that disk, then record again"
    ),
    "recording.too_long": (
        "the recording reached the longest a WAV file can hold ({hours:.1f} h) and stopped; "
        "the audio so far is saved in {path}; start a new recording to go on"
    ),
    "recording.failed": (
        "recording to {path} stopped on an unexpected error ({detail}); the audio so far is "
        "saved there; start a new recording to go on, and report this error"
    ),
    "recording.not_a_recording": (
        "{path}: not a Tingxie recording (no WAV header); it cannot be recovered"
    ),
    "recording.repair_failed": (
        "{path}: could not be repaired ({detail}); its audio is kept there and it is offered "
        "again at the next start: close any program that has it open and make it writable, or "
        "open it in an audio editor as raw 16 kHz mono 16-bit audio after a 44-byte header"
    ),
    "recording.recover_failed": "{path}: could not be recovered ({detail})",
    "recording.folder": (
        "recordings folder {path} cannot be made or written ({detail}); nothing was recorded: "
        "make it a writable folder with free space on its disk (move away a file of that "
        "name), then record again"
    ),
    "recording.scan_failed": "{folder}: could not look for unfinished recordings ({detail})",
    # -- transcription
    "transcribe.live_failed": (
        "live transcription failed: {detail}; the recording goes on, and is transcribed from "
        "its file when it stops"
    ),
    # -- a watch folder's transcripts (engine.watch)
    "transcribe.out_is_file": (
        "{path} is a file, where a folder for transcripts should be; move or rename that file, "
        "or choose another output folder"
    ),
    "transcribe.name_too_long": (
        "{path}: its transcript name {name} is {length} bytes, longer than a file name may be "
        "({limit}); rename the recording, or choose a shorter file-name pattern"
    ),
    "transcribe.watch_state_failed": (
        "{path}: {audio} could not be recorded there as done ({detail}); it is done again at "
        "the next start"
    ),
    "transcribe.watch_write_failed": (
        "{paths} could not be written ({detail}), so none of the transcripts of {audio} "
        "changed; free some space, or choose another output folder; it is transcribed again "
        "at the next start"
    ),
    "transcribe.folder_in_the_way": (
        "{path}: that is a folder, where a transcript of {audio} goes (the recording resumed: "
        "its transcripts replace their earlier versions); a transcript never replaces a "
        "folder: rename or move that folder, then start the watch again (it transcribes the "
        "recording then), or choose another folder with --out DIR"
    ),
    # -- punctuation (engine.punctuation)
    "punctuation.load_failed": (
        "{path}: cannot load the punctuation model ({detail}); rebuild it with `python -m "
        "engine.tune.punctuation_train`, or transcribe without marks (--no-punctuation)"
    ),
    # -- training the punctuation model (engine.tune.punctuation_train)
    "punctuation.bad_option": "{option} {value} is too small; give {least} or more",
    "punctuation.too_little_text": (
        "{path}: {count} lines with characters, fewer than the {least} training needs; give at "
        "least {least} punctuated sentences, one a line"
    ),
    "punctuation.out_unusable": (
        "--out {path}: the trained model cannot be saved there ({problem}); make it a writable "
        "folder, or choose another with --out DIR"
    ),
    "punctuation.text_unreadable": (
        "--text {path}: cannot read it ({detail}); give a UTF-8 text file of punctuated "
        "sentences, one a line"
    ),
    # -- language models, domain text and hotwords (engine.lm)
    "lm.bad_folder": (
        "{path}: the language model could not be read ({detail}); re-copy the model folder, or "
        "decode without it (--decoder greedy)"
    ),
    "lm.domain_unreadable": (
        "{path}: cannot read the domain text ({detail}); give a UTF-8 text file"
    ),
    "lm.domain_empty": "{path}: the domain text holds no sentences; write one sentence per line",
    "lm.hotwords_unreadable": (
        "{path}: cannot read the hotwords ({detail}); give a UTF-8 text file, one term a line"
    ),
    "lm.hotwords_empty": (
        "{path}: no hotword in it can be used (none left once punctuation and spaces are "
        "removed, or none written in characters the model has); write one term a line in "
        "characters the model writes"
    ),
    "lm.hotword_space_weight": (
        "{path} line {line}: {text!r} ends in a space and a number; a weight goes after a tab, "
        "not a space: put a tab before the number, or remove the space to keep it in the term"
    ),
    "lm.hotword_weight": (
        "{path} line {line}: {text!r} has a weight after its tab that is not a finite number; "
        "write a number (nats per character) after the tab, or remove the tab"
    ),
    "lm.no_decoder": (
        "beam search needs the flashlight-text package ({detail}); install it with "
        "`pip install flashlight-text`, or decode with --decoder greedy"
    ),
    "lm.other_vocabulary": (
        "{path}: this language model knows {known} of the model's {total} characters "
        "({percent}%), under half: it is over another vocabulary (pinyin, words, another "
        "model's characters); replace it with a character n-gram of this model's characters, "
        "or remove the model folder's lm folder"
    ),
    "lm.bad_setting": (
        "{path}: {detail}; correct the setting, or remove it to search with its default"
    ),
    "lm.hotword_weight_range": (
        "{path} line {line}: {text!r} has a weight beyond ±{limit:g}; give a weight between "
        "-{limit:g} and {limit:g} nats per character, or none for the default"
    ),
    "lm.hotword_too_long": (
        "{path} line {line}: {text!r} is {length} characters long, over the {limit} a hotword "
        "may have; a hotword is a name or term, one a line: give running text as a domain "
        "text (--domain-text) instead"
    ),
    # -- the transcript library (engine.library.store)
    "store.disk_full": (
        "{path}: the disk is full, so the last change is not saved yet; free some space "
        "(your work is kept and saved with the next change)"
    ),
    "store.disk_full_not_done": (
        "{path}: the disk is full, so nothing was changed; free some space and try again"
    ),
    "store.read_only": (
        "{path}: the database is read-only, so changes are not saved; make the file and its "
        "folder writable, or set {variable} to a writable folder"
    ),
    "store.busy": "{path}: the database is busy in another program; close it and try again",
    "store.damaged": "{path}: the database is damaged ({detail}); move it aside to start a new one",
    "store.not_a_folder": (
        "{path}: {parent} is a file, not a folder; move that file or choose another place "
        "for the database"
    ),
    "store.cannot_open": (
        "{path}: cannot open the database ({detail}); check that the folder is writable"
    ),
    "store.error": "{path}: database error ({detail}); the change is not saved",
    "store.migration_failed": (
        "{path}: could not be brought up to date from schema {version} to {number} ({detail}); "
        "the file is left as it was at schema {version}: keep a copy of it and report this"
    ),
    "store.newer_schema": (
        "{path}: made by a newer Tingxie (schema {version} > {supported}); update Tingxie or "
        "set another data folder"
    ),
    # -- training sets from checked text (engine.library.corrections)
    "dataset.no_recording": (
        "transcript {transcript} has no recording, so its corrections cannot become clips"
    ),
    "dataset.clip_failed": "transcript {transcript}: {error}",
    "dataset.recording_missing": (
        "transcript {transcript}'s recording {path} is missing: put it back there or leave it out"
    ),
    "dataset.recording_changed": (
        "{path} no longer matches transcript {transcript}: the file changed since it was "
        "transcribed, so its clips would not hold the checked text; transcribe it again and "
        "review that, or put the original file back"
    ),
    "dataset.recording_shorter": (
        "{path} ends at {duration:.2f} s but transcript {transcript} runs to {end:.2f} s: the "
        "recording is shorter than its transcript (it changed since it was transcribed); "
        "transcribe it again, or put the original file back"
    ),
    "dataset.bad_name": (
        "dataset name {name!r}: begin with a letter or digit, then use letters, digits, '-', "
        "'_' or '.'"
    ),
    "dataset.only_doubtful": (
        "the {segments} segment(s) holding checked text still hold text nobody checked "
        "(doubtful spans, or places Fix all occurrences changed), so they cannot go in whole, "
        "and their checked stretches alone are shorter than {seconds} s; accept or fix the "
        "rest of their doubtful text, or check the changed places again (select them, "
        "Ctrl+Shift+R, accept), then make the set again"
    ),
    "dataset.nothing_checked": (
        "no checked text long enough to train on in these transcripts; accept or fix some "
        "doubtful spans first"
    ),
    "dataset.write_failed": "{path}: cannot write the dataset ({detail}); free space",
    "dataset.failed": "training set {name!r} could not be built: {detail}",
    "dataset.not_recorded": (
        "training set {name!r} was written to {path}, but the library could not record it "
        "({detail}); build it again under that name, replacing it, to record it"
    ),
    "dataset.name_taken": (
        "training set {name!r} would go in {path}, which holds {found} and is no training set "
        "(a tuned model, say); choose another name: nothing there is replaced"
    ),
    # -- tuning data: a source that cannot be used at all (engine.tune.data.DatasetError)
    "dataset.none_chosen": "no data chosen; add a training set, a folder or a manifest",
    "dataset.source_missing": (
        "data {source} does not exist; give a manifest (.tsv, .csv or .jsonl) or a folder"
    ),
    "dataset.not_a_folder": "{folder} is not a folder; choose the folder holding audio + .txt",
    "dataset.not_common_voice": (
        "{folder} is not a Common Voice folder: expected {tsv} and clips/ in it"
    ),
    "dataset.manifest_missing": (
        "manifest {path} does not exist; check the path, and give a manifest file (.tsv, .csv "
        "or .jsonl)"
    ),
    "dataset.manifest_is_folder": (
        "{path} is a folder, not a manifest; give the manifest file inside it (.tsv, .csv or "
        ".jsonl)"
    ),
    "dataset.manifest_unreadable": "{path}: cannot read the manifest as UTF-8 text ({detail})",
    "dataset.manifest_not_a_table": (
        '{path}: not readable as a table ({detail}); look for a quote (") that opens a text '
        "and never closes"
    ),
    "dataset.manifest_empty": "{path} is empty; add rows of path{delimiter}text",
    "dataset.no_path_column": (
        "{path}: the header row names the columns {columns} but none for the audio path "
        "({names}); rename the column that holds it"
    ),
    "dataset.no_text_column": (
        "{path}: the header row names the columns {columns} but none for the transcript "
        "({names}); rename the column that holds it"
    ),
    "dataset.no_path_or_text_column": (
        "{path}: the header row names the columns {columns} but none for the audio path "
        "({path_names}) or the transcript ({text_names}); rename the column that holds it"
    ),
    "dataset.none_usable": (
        "{source}: none of {total} rows is usable ({found}); fix the rows the validation "
        "table lists"
    ),
    # -- evaluation data (engine.tune.evaluate.read_examples)
    "dataset.source_is_audio": (
        "{path} is a recording, not a manifest; give a manifest (.tsv, .csv or .jsonl of path "
        "and text) or a folder holding one"
    ),
    "dataset.no_rows_to_score": (
        "{source} holds no rows to score; give a manifest with rows of path and text under its "
        "header, or a folder of recordings and their transcripts"
    ),
    "dataset.none_to_score": (
        "{source}: no row left to score ({skipped} skipped); fix or fill in the rows named "
        "above, then run again"
    ),
    # -- tuning data: what is wrong with one row (engine.tune.data.Finding, RowError)
    "dataset.row_no_transcript": "no transcript {name} beside it",
    "dataset.row_transcript_unreadable": "transcript not readable as UTF-8: {detail}",
    "dataset.row_quote_runs_on": (
        'a quote (") in it closes only on line {last}, so lines {first}-{last} read as one '
        "row; put each text in quotes whole, or remove the stray quote"
    ),
    "dataset.row_too_few_columns": "{count} column(s); expected path and text",
    "dataset.row_tab_in_text": (
        "{count} columns where {width} are expected: a tab in the text splits it; remove the tab"
    ),
    "dataset.row_comma_in_text": (
        "{count} columns where {width} are expected: a comma in the text splits it; put the "
        'text in double quotes ("…")'
    ),
    "dataset.row_bad_time": "{value!r} is not a time in seconds",
    "dataset.row_half_span": "{origin}: give both start and end, or neither",
    "dataset.row_empty_span": (
        "{origin}: span start={start} end={end} is empty or negative; end must be after start"
    ),
    "dataset.row_span_past_end": "span ends at {end:.2f} s but the file lasts {duration:.2f} s",
    "dataset.row_audio_missing": "{path} does not exist",
    "dataset.row_empty_text": "transcript is empty",
    "dataset.row_too_short": "{seconds:.2f} s < {limit} s",
    "dataset.row_too_long": "{seconds:.1f} s > {limit} s",
    "dataset.row_ctc_too_long": "{labels} CTC labels for {frames} audio frames",
    "dataset.row_tokens_too_long": "{count} tokens; the model's decoder takes {limit}",
    "dataset.row_unknown_chars": "not in vocabulary: {chars}",
    "dataset.clips_shorter_than_mask": (
        "min_seconds={min_seconds} keeps {count} training clip(s) shorter than one SpecAugment "
        "time mask (mask_time_length={length} frames, {mask_seconds} s), e.g. {example} "
        "({seconds:.2f} s); raise min_seconds to {mask_seconds} to skip them, lower "
        "mask_time_length, or set mask_time_prob: 0"
    ),
    "dataset.row_shorter_than_mask": (
        "{seconds:.2f} s: shorter than one SpecAugment time mask (mask_time_length={length}, "
        "{mask_seconds} s)"
    ),
    # -- exports and embeddings (engine.tune.formats, engine.embed)
    "export.no_adapter": (
        "{path}: no LoRA adapter here (adapter/adapter_config.json); only the output folder of "
        "a LoRA tuning job has one — export it as a Hugging Face folder instead"
    ),
    "export.no_adapter_whisper": (
        "{path}: no LoRA adapter here (adapter/adapter_config.json); only the output folder of "
        "a LoRA tuning job has one — a Whisper (CTranslate2) folder is already complete: copy "
        "or share it as it is"
    ),
    "export.whisper": (
        "{path} is a Whisper (CTranslate2) folder: it is already complete in its runtime's "
        "format, so it is not exported as a Hugging Face folder or ONNX; copy or share it as "
        "it is"
    ),
    "export.onnx_source": (
        "{path} is an ONNX export, which is not exported again; export from the PyTorch model "
        "it was made from"
    ),
    "export.target_is_file": (
        "{path} is a file, not a folder; choose a folder for the export (a new or empty one), "
        "and that file stays as it is"
    ),
    "export.not_writable": (
        "{path}: nothing can be written in {folder}; choose another output folder, or make "
        "that one writable"
    ),
    "export.failed": "the export to {path} failed: {detail}",
    "export.target_exists": (
        "{path} already exists and holds files; choose another output folder, or delete that "
        "one first"
    ),
    "export.cancelled": (
        "the export to {path} was cancelled; nothing was written there (an earlier export in "
        "that folder is as it was)"
    ),
    "export.name_taken": (
        "{path} was saved there while the export ran, so the export was not put beside it "
        "(nothing of it was left); move that file away and export again, or choose another "
        "output folder"
    ),
    "export.bad_path": (
        "{path} cannot be used as an output folder ({detail}); choose another one (with a "
        "shorter name, where it is too long)"
    ),
    "export.no_model": "no model to export; choose a model folder, a Hub id or a tuning job",
    "export.onnx_missing": (
        "an ONNX export needs the optional packages {packages}, which are not installed; "
        "install them by running `pip install -e '.[onnx]'` in the Tingxie source folder, or "
        "export as a Hugging Face folder"
    ),
    "export.check_no_rows": (
        "check manifest {path} holds no rows; put rows of path and text under its header, or "
        "leave the check manifest out"
    ),
    "export.check_none_usable": (
        "check manifest {path}: none of the {total} rows checked is usable ({rows}); fix those "
        "rows, or leave the check manifest out"
    ),
    "embed.no_model": "no model is loaded; load a CTC model first, then export its embeddings",
    "embed.failed": "the embeddings of {path} could not be computed: {detail}",
    "embed.too_short": (
        "{path}: too short for a vector: the model needs at least {ms} ms of audio; give a "
        "longer recording"
    ),
    "embed.parquet_missing": (
        "parquet needs the optional package pyarrow, which is not installed; install it by "
        "running {hint} in the Tingxie source folder, or write npy"
    ),
    # -- speakers (engine.speakers)
    "speakers.missing": (
        "telling speakers apart needs the optional package {package}; install it by running "
        "{hint} in the Tingxie source folder"
    ),
    # -- the transcript library (engine.library.store), continued
    "store.is_folder": (
        "{path} is a folder, not a database file; name the database file in it ({file})"
    ),
    "store.missing": (
        "{path}: no such library database; check the path, or leave out --db to use the "
        "library in your data folder ({default})"
    ),
    "store.not_tingxie": (
        "{path}: not a Tingxie library (it holds another program's tables: {tables}); it was "
        "left as it is: choose Tingxie's database file (tingxie.db)"
    ),
    "store.query_too_long": (
        "the search text is {length} characters long; search for at most {limit} characters "
        "(a phrase from the passage is enough to find it)"
    ),
    "store.changed_elsewhere": (
        "{path}: transcript {id} was changed in another window or with tingxie-cli since it "
        "was opened here, and this change was not saved over it; it has been reloaded as "
        "stored: make your change again"
    ),
    "store.no_transcript": (
        "{path}: transcript {id} is no longer in the library (deleted in another window or "
        "with tingxie-cli); choose one from the library's list"
    ),
    # -- tuning data, continued (engine.tune.data)
    "dataset.text_encoding": (
        "{path}: not UTF-8, UTF-16 or GBK text; save it as UTF-8 (in Notepad: Save as, "
        "Encoding UTF-8)"
    ),
    "dataset.common_voice_no_tsv": (
        "{folder} looks like a Common Voice folder (clips/ and {found}) but has no {tsv}; add "
        "the .tsv to train on as a manifest (its clips are found in clips/)"
    ),
    "dataset.common_voice_no_clips": (
        "{folder} holds {found} but no clips/ folder, where Common Voice keeps the audio; "
        "extract the clips archive into {folder}, or choose the folder that holds clips/"
    ),
    "dataset.no_rows": (
        "{source} holds nothing to train on: no rows under a manifest's header, no audio or "
        ".txt files in a folder; choose the manifest or folder that holds the recordings and "
        "their transcripts"
    ),
    "dataset.row_no_audio": (
        "no recording named {name} beside this transcript; put the audio file beside it "
        "under the same name"
    ),
    "dataset.row_extra_columns": (
        "{count} columns where {width} are expected, the extra ones holding {cells}: name "
        "every column in the header row (path, text, start, end, …), or remove the extra cells"
    ),
    "dataset.row_no_header_half_span": (
        "{count} columns and no header row, so they read as path, text, start, end, and a "
        "start needs an end; add a header row naming the columns (e.g. path, text, duration), "
        "or give both start and end"
    ),
    "dataset.row_number_joined": (
        "the number {number} would train as {joined} (normalization removes the punctuation "
        "between its digits); write the number as it is spoken, e.g. 2.5 as 二点五"
    ),
    "dataset.row_repeated": (
        "the same audio and transcript as {first}: left out, so that the clip trains once"
    ),
    "dataset.row_conflicting": (
        "{others} give the same audio another transcript, and each trains as written; keep one "
        "row, with the right text"
    ),
    "dataset.row_bad_json": (
        "not a JSON object ({detail}); write one object per line, such as "
        '{{"audio": "clips/a.wav", "text": "…"}}'
    ),
    "dataset.row_json_keys": (
        "no audio or text key (the line has {keys}); name the audio with one of {path_names} "
        "and the text with one of {text_names}"
    ),
    "dataset.row_json_not_a_string": (
        '"{key}" is {value}, not a string; write it in quotes, e.g. "{key}": "{example}"'
    ),
    "lm.domain_unusable": (
        "{path}: the domain text holds no character the model writes (English, pinyin or "
        "another script?); give sentences in the characters the model writes, or none"
    ),
}


class TingxieError(Exception):
    """An error with a code from `MESSAGES` and the parameters its wording needs.

    Parameters may be other errors (a clip that failed inside a training set): a front end
    words those by their own codes.
    """

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params = params
        super().__init__(MESSAGES[code].format(**params))
