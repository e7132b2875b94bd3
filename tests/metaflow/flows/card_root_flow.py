"""A step with a card, for a card root outside the datastore
(METAFLOW_CARD_LOCALROOT)."""

from metaflow import FlowSpec, card, step


class CardRootFlow(FlowSpec):
    @card
    @step
    def start(self):
        self.value = 1
        self.next(self.end)

    @step
    def end(self):
        print("CARD-ROOT-END")


if __name__ == "__main__":
    CardRootFlow()
