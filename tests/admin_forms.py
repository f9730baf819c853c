from django import forms


def form_post_data(form, **overrides) -> dict:
    """What a browser would post for an admin form as rendered, with some inputs changed."""
    data = {}
    for bound in form:
        names = [bound.html_name]
        if bound.field.show_hidden_initial:
            names.append(bound.html_initial_name)
        value = bound.value()
        widget = bound.field.widget
        for name in names:
            if isinstance(widget, forms.MultiWidget):
                parts = widget.decompress(value) if value else [None] * len(widget.widgets)
                for index, part in enumerate(parts):
                    data[f"{name}_{index}"] = "" if part is None else str(part)
            elif value is not None:
                data[name] = str(value)
    data.update(overrides)
    return data
