"""Turning stored mail into a personal model: data playback, fine-tuning, export, evaluation.

Never imports textual; torch, transformers, peft and llama_cpp load inside functions.
"""
