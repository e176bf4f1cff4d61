"""``mean-match``: each class's mean synthetic image against the mean of a real batch of the class."""

from condensery import Matcher

from .options import MeanOptions


class MeanMatcher(Matcher):
    """Offers ``ClassFocus`` by having its member, ``focus``."""

    Options = MeanOptions

    def prepare(self, ctx):
        super().prepare(ctx)  # keeps ctx as self.ctx
        self.gen = ctx.generator("matcher", "mean-match")
        self.classes = None

    def focus(self, classes):
        self.classes = classes

    def loss(self, images, labels, step):
        real_x, real_y = self.ctx.data.balanced_batch(self.options.batch_real, self.gen)
        classes = labels.unique().tolist() if self.classes is None else self.classes
        total = images.sum() * 0.0
        for c in classes:
            total = total + (images[labels == c].mean(0) - real_x[real_y == c].mean(0)).pow(2).sum()
        return total

    def state_dict(self):
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state):
        self.gen.set_state(state["gen"])
