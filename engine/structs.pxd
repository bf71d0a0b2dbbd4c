# WRITTEN by setup.py (ledger.compiled.struct_declarations) from the structs' sources: do
# not edit. The msgspec structs the compiled engine reads (commands, events, markets),
# declared to Cython as external extension types with their slots in memory order, so
# that a variable typed as one (``structs.Transfer t``) has its fields read at their
# offsets instead of by a generic attribute lookup (~20 ns). Read only (the structs are
# frozen). Cython checks each type's size at import; tests/unit/test_compiled_declarations.py
# checks every field's offset against the type's member descriptor.

cdef extern from *:
    """
    typedef struct { PyObject_HEAD PyObject *client_id, *quote_id, *rfq_id, *signature, *trader; } agentperp_commands_AcceptQuote;
    typedef struct { PyObject_HEAD PyObject *agent, *amount_e6, *client_id, *position_id; } agentperp_commands_AddMargin;
    typedef struct { PyObject_HEAD PyObject *maker; } agentperp_commands_CancelAgentQuotes;
    typedef struct { PyObject_HEAD PyObject *client_id, *maker, *quote_id; } agentperp_commands_CancelQuote;
    typedef struct { PyObject_HEAD PyObject *client_id, *rfq_id, *trader; } agentperp_commands_CancelRfq;
    typedef struct { PyObject_HEAD PyObject *agent, *client_id, *fraction_bps, *position_id; } agentperp_commands_ClosePosition;
    typedef struct { PyObject_HEAD PyObject *agent, *amount_e6, *ref; } agentperp_commands_Deposit;
    typedef struct { PyObject_HEAD PyObject *client_id, *keeper, *position_id; } agentperp_commands_Liquidate;
    typedef struct { PyObject_HEAD PyObject *conf_e8, *ema_price_e8, *feed_id, *market, *price_e8, *publish_ns, *source, *sources, *spread_bps; } agentperp_commands_OracleUpdate;
    typedef struct { PyObject_HEAD PyObject *agent, *amount_e6, *client_id, *position_id; } agentperp_commands_RemoveMargin;
    typedef struct { PyObject_HEAD PyObject *auto_accept, *client_id, *duration, *expires_in_ms, *leverage, *market, *max_funding_rate_e9, *side, *size_e6, *target_rate_e9, *trader; } agentperp_commands_RequestQuote;
    typedef struct { PyObject_HEAD PyObject *client_id, *collateral_e6, *funding_rate_e9, *maker, *rfq_id, *valid_for_ms; } agentperp_commands_SubmitQuote;
    typedef struct { PyObject_HEAD PyObject *from_source, *market, *reason, *to_source; } agentperp_commands_SwitchOracleSource;
    typedef struct { PyObject_HEAD PyObject *agent, *amount_e6, *client_id, *destination; } agentperp_commands_Withdraw;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns; } agentperp_events__Event;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *state_hash; } agentperp_events_Checkpoint;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *agent, *amount_e6, *ref, *transfers; } agentperp_events_Deposited;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *boundary_ns, *long_to_short_e6, *position_ids, *shortfall_e6; } agentperp_events_FundingSettled;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *cleared, *flagged, *market; } agentperp_events_LiquidationWatch;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *agent, *client_id, *delta_e6, *position_id, *side, *transfers; } agentperp_events_MarginChanged;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *from_source, *market, *reason, *to_source; } agentperp_events_OracleSourceSwitched;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *conf_e8, *ema_price_e8, *feed_id, *market, *price_e8, *publish_ns, *source, *sources, *spread_bps; } agentperp_events_OracleUpdated;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *agent, *bad_debt_e6, *client_id, *closed_size_e6, *conf_e8, *fraction_bps, *funding_long_to_short_e6, *insurance_e6, *pnl_long_e6, *position_id, *price_e8, *publish_ns, *reason, *remaining_size_e6, *transfers; } agentperp_events_PositionClosed;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *bad_debt_e6, *client_id, *funding_long_to_short_e6, *insurance_e6, *keeper, *oracle_stale, *oracle_validity, *pnl_long_e6, *position_id, *price_e8, *publish_ns, *reward_e6, *side, *transfers; } agentperp_events_PositionLiquidated;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *auto_accepted, *client_id, *duration, *entry_price_e8, *expires_ns, *funding_rate_e9, *long_agent, *maker_fee_e6, *margin_long_e6, *margin_short_e6, *market, *oracle_conf_e8, *oracle_publish_ns, *position_id, *quote_id, *released_quote_ids, *rfq_id, *short_agent, *signature, *size_e6, *taker_fee_e6, *taker_side, *transfers; } agentperp_events_PositionOpened;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *client_id, *maker, *quote_id, *reason, *rfq_id, *transfers; } agentperp_events_QuoteReleased;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *client_id, *collateral_e6, *expires_ns, *fee_e6, *funding_rate_e9, *maker, *quote_id, *rfq_id, *transfers; } agentperp_events_QuoteSubmitted;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *client_id, *reason, *rfq_id, *trader, *transfers; } agentperp_events_RfqClosed;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *auto_accept, *client_id, *duration, *expires_ns, *fee_e6, *leverage, *margin_e6, *market, *max_funding_rate_e9, *rfq_id, *side, *size_e6, *target_rate_e9, *trader, *transfers; } agentperp_events_RfqOpened;
    typedef struct { PyObject_HEAD PyObject *amount_e6, *credit, *credit_ref, *debit, *debit_ref, *kind; } agentperp_events_Transfer;
    typedef struct { PyObject_HEAD PyObject *cmd_id, *seq, *ts_ns, *agent, *amount_e6, *client_id, *destination, *transfers; } agentperp_events_Withdrawn;
    typedef struct { PyObject_HEAD PyObject *agents_max, *auto_liquidate_after_ms, *checkpoint_every_events, *client_ids_max, *deposit_refs_max, *idempotency_window_ms, *live_quotes_per_agent_max, *markets, *open_rfqs_per_agent_max, *positions_max, *tick_events_max; } agentperp_markets_EngineConfig;
    typedef struct { PyObject_HEAD PyObject *leverage_max, *liquidation_reward_bps, *maintenance_of_initial_bps, *maker_fee_bps, *market_id, *oracle_age_ns_max, *oracle_close_age_ns_max, *oracle_conf_bps_max, *oracle_twap_window_ns, *oracle_volatility_bps_max, *quote_lifetime_ms_default, *quote_lifetime_ms_max, *quote_lifetime_ms_min, *rfq_lifetime_ms_default, *rfq_lifetime_ms_max, *rfq_lifetime_ms_min, *size_e6_max, *size_e6_min, *symbol, *taker_fee_bps; } agentperp_markets_Market;
    """
    ctypedef class engine.commands.AcceptQuote [object agentperp_commands_AcceptQuote]:
        cdef readonly object client_id
        cdef readonly object quote_id
        cdef readonly object rfq_id
        cdef readonly object signature
        cdef readonly object trader
    ctypedef class engine.commands.AddMargin [object agentperp_commands_AddMargin]:
        cdef readonly object agent
        cdef readonly object amount_e6
        cdef readonly object client_id
        cdef readonly object position_id
    ctypedef class engine.commands.CancelAgentQuotes [object agentperp_commands_CancelAgentQuotes]:
        cdef readonly object maker
    ctypedef class engine.commands.CancelQuote [object agentperp_commands_CancelQuote]:
        cdef readonly object client_id
        cdef readonly object maker
        cdef readonly object quote_id
    ctypedef class engine.commands.CancelRfq [object agentperp_commands_CancelRfq]:
        cdef readonly object client_id
        cdef readonly object rfq_id
        cdef readonly object trader
    ctypedef class engine.commands.ClosePosition [object agentperp_commands_ClosePosition]:
        cdef readonly object agent
        cdef readonly object client_id
        cdef readonly object fraction_bps
        cdef readonly object position_id
    ctypedef class engine.commands.Deposit [object agentperp_commands_Deposit]:
        cdef readonly object agent
        cdef readonly object amount_e6
        cdef readonly object ref
    ctypedef class engine.commands.Liquidate [object agentperp_commands_Liquidate]:
        cdef readonly object client_id
        cdef readonly object keeper
        cdef readonly object position_id
    ctypedef class engine.commands.OracleUpdate [object agentperp_commands_OracleUpdate]:
        cdef readonly object conf_e8
        cdef readonly object ema_price_e8
        cdef readonly object feed_id
        cdef readonly object market
        cdef readonly object price_e8
        cdef readonly object publish_ns
        cdef readonly object source
        cdef readonly object sources
        cdef readonly object spread_bps
    ctypedef class engine.commands.RemoveMargin [object agentperp_commands_RemoveMargin]:
        cdef readonly object agent
        cdef readonly object amount_e6
        cdef readonly object client_id
        cdef readonly object position_id
    ctypedef class engine.commands.RequestQuote [object agentperp_commands_RequestQuote]:
        cdef readonly object auto_accept
        cdef readonly object client_id
        cdef readonly object duration
        cdef readonly object expires_in_ms
        cdef readonly object leverage
        cdef readonly object market
        cdef readonly object max_funding_rate_e9
        cdef readonly object side
        cdef readonly object size_e6
        cdef readonly object target_rate_e9
        cdef readonly object trader
    ctypedef class engine.commands.SubmitQuote [object agentperp_commands_SubmitQuote]:
        cdef readonly object client_id
        cdef readonly object collateral_e6
        cdef readonly object funding_rate_e9
        cdef readonly object maker
        cdef readonly object rfq_id
        cdef readonly object valid_for_ms
    ctypedef class engine.commands.SwitchOracleSource [object agentperp_commands_SwitchOracleSource]:
        cdef readonly object from_source
        cdef readonly object market
        cdef readonly object reason
        cdef readonly object to_source
    ctypedef class engine.commands.Withdraw [object agentperp_commands_Withdraw]:
        cdef readonly object agent
        cdef readonly object amount_e6
        cdef readonly object client_id
        cdef readonly object destination
    ctypedef class engine.events._Event [object agentperp_events__Event]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
    ctypedef class engine.events.Checkpoint [object agentperp_events_Checkpoint]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object state_hash
    ctypedef class engine.events.Deposited [object agentperp_events_Deposited]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object agent
        cdef readonly object amount_e6
        cdef readonly object ref
        cdef readonly object transfers
    ctypedef class engine.events.FundingSettled [object agentperp_events_FundingSettled]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object boundary_ns
        cdef readonly object long_to_short_e6
        cdef readonly object position_ids
        cdef readonly object shortfall_e6
    ctypedef class engine.events.LiquidationWatch [object agentperp_events_LiquidationWatch]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object cleared
        cdef readonly object flagged
        cdef readonly object market
    ctypedef class engine.events.MarginChanged [object agentperp_events_MarginChanged]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object agent
        cdef readonly object client_id
        cdef readonly object delta_e6
        cdef readonly object position_id
        cdef readonly object side
        cdef readonly object transfers
    ctypedef class engine.events.OracleSourceSwitched [object agentperp_events_OracleSourceSwitched]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object from_source
        cdef readonly object market
        cdef readonly object reason
        cdef readonly object to_source
    ctypedef class engine.events.OracleUpdated [object agentperp_events_OracleUpdated]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object conf_e8
        cdef readonly object ema_price_e8
        cdef readonly object feed_id
        cdef readonly object market
        cdef readonly object price_e8
        cdef readonly object publish_ns
        cdef readonly object source
        cdef readonly object sources
        cdef readonly object spread_bps
    ctypedef class engine.events.PositionClosed [object agentperp_events_PositionClosed]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object agent
        cdef readonly object bad_debt_e6
        cdef readonly object client_id
        cdef readonly object closed_size_e6
        cdef readonly object conf_e8
        cdef readonly object fraction_bps
        cdef readonly object funding_long_to_short_e6
        cdef readonly object insurance_e6
        cdef readonly object pnl_long_e6
        cdef readonly object position_id
        cdef readonly object price_e8
        cdef readonly object publish_ns
        cdef readonly object reason
        cdef readonly object remaining_size_e6
        cdef readonly object transfers
    ctypedef class engine.events.PositionLiquidated [object agentperp_events_PositionLiquidated]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object bad_debt_e6
        cdef readonly object client_id
        cdef readonly object funding_long_to_short_e6
        cdef readonly object insurance_e6
        cdef readonly object keeper
        cdef readonly object oracle_stale
        cdef readonly object oracle_validity
        cdef readonly object pnl_long_e6
        cdef readonly object position_id
        cdef readonly object price_e8
        cdef readonly object publish_ns
        cdef readonly object reward_e6
        cdef readonly object side
        cdef readonly object transfers
    ctypedef class engine.events.PositionOpened [object agentperp_events_PositionOpened]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object auto_accepted
        cdef readonly object client_id
        cdef readonly object duration
        cdef readonly object entry_price_e8
        cdef readonly object expires_ns
        cdef readonly object funding_rate_e9
        cdef readonly object long_agent
        cdef readonly object maker_fee_e6
        cdef readonly object margin_long_e6
        cdef readonly object margin_short_e6
        cdef readonly object market
        cdef readonly object oracle_conf_e8
        cdef readonly object oracle_publish_ns
        cdef readonly object position_id
        cdef readonly object quote_id
        cdef readonly object released_quote_ids
        cdef readonly object rfq_id
        cdef readonly object short_agent
        cdef readonly object signature
        cdef readonly object size_e6
        cdef readonly object taker_fee_e6
        cdef readonly object taker_side
        cdef readonly object transfers
    ctypedef class engine.events.QuoteReleased [object agentperp_events_QuoteReleased]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object client_id
        cdef readonly object maker
        cdef readonly object quote_id
        cdef readonly object reason
        cdef readonly object rfq_id
        cdef readonly object transfers
    ctypedef class engine.events.QuoteSubmitted [object agentperp_events_QuoteSubmitted]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object client_id
        cdef readonly object collateral_e6
        cdef readonly object expires_ns
        cdef readonly object fee_e6
        cdef readonly object funding_rate_e9
        cdef readonly object maker
        cdef readonly object quote_id
        cdef readonly object rfq_id
        cdef readonly object transfers
    ctypedef class engine.events.RfqClosed [object agentperp_events_RfqClosed]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object client_id
        cdef readonly object reason
        cdef readonly object rfq_id
        cdef readonly object trader
        cdef readonly object transfers
    ctypedef class engine.events.RfqOpened [object agentperp_events_RfqOpened]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object auto_accept
        cdef readonly object client_id
        cdef readonly object duration
        cdef readonly object expires_ns
        cdef readonly object fee_e6
        cdef readonly object leverage
        cdef readonly object margin_e6
        cdef readonly object market
        cdef readonly object max_funding_rate_e9
        cdef readonly object rfq_id
        cdef readonly object side
        cdef readonly object size_e6
        cdef readonly object target_rate_e9
        cdef readonly object trader
        cdef readonly object transfers
    ctypedef class engine.events.Transfer [object agentperp_events_Transfer]:
        cdef readonly object amount_e6
        cdef readonly object credit
        cdef readonly object credit_ref
        cdef readonly object debit
        cdef readonly object debit_ref
        cdef readonly object kind
    ctypedef class engine.events.Withdrawn [object agentperp_events_Withdrawn]:
        cdef readonly object cmd_id
        cdef readonly object seq
        cdef readonly object ts_ns
        cdef readonly object agent
        cdef readonly object amount_e6
        cdef readonly object client_id
        cdef readonly object destination
        cdef readonly object transfers
    ctypedef class engine.markets.EngineConfig [object agentperp_markets_EngineConfig]:
        cdef readonly object agents_max
        cdef readonly object auto_liquidate_after_ms
        cdef readonly object checkpoint_every_events
        cdef readonly object client_ids_max
        cdef readonly object deposit_refs_max
        cdef readonly object idempotency_window_ms
        cdef readonly object live_quotes_per_agent_max
        cdef readonly object markets
        cdef readonly object open_rfqs_per_agent_max
        cdef readonly object positions_max
        cdef readonly object tick_events_max
    ctypedef class engine.markets.Market [object agentperp_markets_Market]:
        cdef readonly object leverage_max
        cdef readonly object liquidation_reward_bps
        cdef readonly object maintenance_of_initial_bps
        cdef readonly object maker_fee_bps
        cdef readonly object market_id
        cdef readonly object oracle_age_ns_max
        cdef readonly object oracle_close_age_ns_max
        cdef readonly object oracle_conf_bps_max
        cdef readonly object oracle_twap_window_ns
        cdef readonly object oracle_volatility_bps_max
        cdef readonly object quote_lifetime_ms_default
        cdef readonly object quote_lifetime_ms_max
        cdef readonly object quote_lifetime_ms_min
        cdef readonly object rfq_lifetime_ms_default
        cdef readonly object rfq_lifetime_ms_max
        cdef readonly object rfq_lifetime_ms_min
        cdef readonly object size_e6_max
        cdef readonly object size_e6_min
        cdef readonly object symbol
        cdef readonly object taker_fee_bps
