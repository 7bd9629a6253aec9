from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/finish/<str:token>/", views.signup_finish, name="signup_finish"),
    path("buy/", views.buy, name="buy"),
    path("orders/", views.order_list, name="list"),
    path("orders/<str:public_id>/", views.order_detail, name="detail"),
    path("orders/<str:public_id>/pay/", views.pay, name="pay"),
    path("orders/<str:public_id>/return/", views.checkout_return, name="return"),
    path("orders/<str:public_id>/cancel/", views.checkout_cancel, name="cancel"),
    path(
        "orders/<str:public_id>/subscription/cancel/",
        views.subscription_cancel,
        name="subscription_cancel",
    ),
]
