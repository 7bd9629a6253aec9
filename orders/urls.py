from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/finish/<str:token>/", views.signup_finish, name="signup_finish"),
    path("account/", views.account, name="account"),
    path("buy/", views.buy, name="buy"),
    path("orders/", views.order_list, name="list"),
    path("orders/<str:public_id>/", views.order_detail, name="detail"),
    path("orders/<str:public_id>/pay/", views.pay, name="pay"),
    # A digital item's file: a signed, expiring link for the order's owner.
    path("downloads/<str:token>/", views.download, name="download"),
    path("orders/<str:public_id>/return/", views.checkout_return, name="return"),
    # Stripe Checkout's cancel_url: the customer left Checkout without paying.
    path("orders/<str:public_id>/cancel/", views.checkout_cancel, name="cancel"),
    # The customer cancels the order itself.
    path("orders/<str:public_id>/cancel-order/", views.order_cancel, name="order_cancel"),
    path(
        "orders/<str:public_id>/subscription/cancel/",
        views.subscription_cancel,
        name="subscription_cancel",
    ),
    path(
        "orders/<str:public_id>/subscription/resume/",
        views.subscription_resume,
        name="subscription_resume",
    ),
]
