from shoal._private.wire.ids import ACTOR_HANDLE_MARK, ActorID, ObjectID


def test_actor_handle_mark_makes_an_object_id_from_an_actor_id():
    import shoal.actor

    # The handle's scope object (made by shoal.actor) is recognised by the state rows.
    assert shoal.actor._HANDLE_MARK == ACTOR_HANDLE_MARK
    assert ActorID.SIZE + len(ACTOR_HANDLE_MARK) == ObjectID.SIZE
