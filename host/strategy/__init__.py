"""Strategies: the API they implement, the built-ins, the evaluators and hot reload."""

from host.strategy.api import (OpenOrder, Strategy, StrategyContext, empty_context,
                               quote_side_intents)
from host.strategy.builtin import ImbalanceMomentum, MarketMaker, MlSignal
from host.strategy.engine import (DEFAULT_EVALUATOR, ProcessPoolEvaluator, SerialEvaluator,
                                  StrategyError, VectorisedEvaluator, make_evaluator)
from host.strategy.reload import ReloadError, StrategyHost, StrategySpec
from host.strategy.summary import BatchSummary

__all__ = [
    "OpenOrder", "Strategy", "StrategyContext", "empty_context", "quote_side_intents",
    "MarketMaker", "ImbalanceMomentum", "MlSignal",
    "DEFAULT_EVALUATOR", "SerialEvaluator", "VectorisedEvaluator", "ProcessPoolEvaluator",
    "StrategyError", "make_evaluator",
    "StrategyHost", "StrategySpec", "ReloadError", "BatchSummary",
]
