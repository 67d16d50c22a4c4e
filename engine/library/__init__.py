"""The transcript library: the store of recordings, transcripts and edits, review logic,
corrections turned into training sets, and the output script. Imports inference (engine.*)."""
