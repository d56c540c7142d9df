"""The learning side: curriculum loader, code extraction, lesson rendering, quizzes and grading.

Nothing here imports torch or triton: kernel source is read with `ast`, never imported.
"""
