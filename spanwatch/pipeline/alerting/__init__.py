"""Alert rules, their lifecycle, grouping, silences, inhibition and notifications."""
