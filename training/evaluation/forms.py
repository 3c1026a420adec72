"""The run page's "Evaluate" form: what people type, checked by the one parser (options.py)."""

from __future__ import annotations

from django import forms

from sdscripts.prompts import MAX_SAMPLE_PROMPTS
from training.evaluation.options import (
    DEFAULT_SEEDS,
    DEFAULT_STRENGTHS,
    OptionError,
    parse_epochs,
    parse_prompts,
    parse_seeds,
    parse_strengths,
    text_of,
)


class EvaluateForm(forms.Form):
    epochs = forms.CharField(
        max_length=200, initial="all", help_text="all, last, or epoch numbers such as 1,3,5."
    )
    strengths = forms.CharField(
        max_length=200,
        initial=text_of(DEFAULT_STRENGTHS),
        help_text="LoRA strengths; 0 is the base model, the baseline to compare against.",
    )
    seeds = forms.CharField(
        max_length=200, initial=text_of(DEFAULT_SEEDS), help_text="Fixed seeds, e.g. 1,2."
    )
    prompts = forms.CharField(
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"One a line (at most {MAX_SAMPLE_PROMPTS}); empty: the run's sample prompts.",
    )

    def _parsed(self, name: str, parse):
        try:
            return parse(self.cleaned_data[name])
        except OptionError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_epochs(self):
        return self._parsed("epochs", parse_epochs)

    def clean_strengths(self):
        return self._parsed("strengths", parse_strengths)

    def clean_seeds(self):
        return self._parsed("seeds", parse_seeds)

    def clean_prompts(self):
        return self._parsed("prompts", parse_prompts)
