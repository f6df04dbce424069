"""Order management: the order state machine, positions and P&L, the host pre-trade check."""

from host.oms.engine import OrderManager, Overfill, UnknownOrder
from host.oms.order import IllegalTransition, Order, OrderState
from host.oms.positions import Position, mid_price
from host.oms.risk import PreTradeCheck, PreTradeConfig, PreTradeReason, PreTradeRejection

__all__ = ["OrderManager", "Overfill", "UnknownOrder", "IllegalTransition", "Order",
           "OrderState", "Position", "mid_price", "PreTradeCheck", "PreTradeConfig",
           "PreTradeReason", "PreTradeRejection"]
