"""What users leave behind: feedback and saved questions, in one SQLite file beside the index."""
