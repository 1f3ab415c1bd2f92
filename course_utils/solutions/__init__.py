"""The reference solutions of the student edition's exercises, written as a student would write
them from the docstring alone (the docstring is the contract the student reads).

tools/exercises.py copies each into its notebook's exercise cell; ``course_utils.checks`` falls
back to it when a student's version does not pass. The course's own engine (part_a/, part_b/) is
factored differently and is what the checks compare against.
"""
